// Express, Fastify and Koa with the tenant held in the cls-hooked namespace of Sequelize.useCLS().
import anyTest, { type TestFn } from 'ava';
import { createNamespace } from 'cls-hooked';
import { Sequelize } from 'sequelize';
import { expressHost } from './helpers/express-suite';
import { type HostCtx, hostSuite } from './helpers/host-suite';
import { fastifyHost } from './helpers/hosts/fastify';
import { koaHost } from './helpers/hosts/koa';

Sequelize.useCLS(createNamespace('smt-hosts'));
hostSuite(anyTest as TestFn<HostCtx>, [
  expressHost('express 4 (cls-hooked)', require('express4')),
  expressHost('express 5 (cls-hooked)', require('express')),
  fastifyHost('fastify 5 (cls-hooked)'),
  koaHost('koa 3 (cls-hooked)', require('koa')),
]);
