// The middleware suite with the tenant held in the cls-hooked namespace of Sequelize.useCLS().
import anyTest, { type TestFn } from 'ava';
import { createNamespace } from 'cls-hooked';
import { Sequelize } from 'sequelize';
import { type Ctx, expressSuite } from './helpers/express-suite';

Sequelize.useCLS(createNamespace('smt-express'));
expressSuite(anyTest as TestFn<Ctx>);
