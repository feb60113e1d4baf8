// koaTenant on Koa 3 and Koa 2, over real HTTP: the hostile cases of every host (host-suite.ts).
import anyTest, { type TestFn } from 'ava';
import { type HostCtx, hostSuite } from './helpers/host-suite';
import { koaHost } from './helpers/hosts/koa';

hostSuite(anyTest as TestFn<HostCtx>, [koaHost('koa 3', require('koa')), koaHost('koa 2', require('koa2'))]);
