import anyTest, { type TestFn } from 'ava';
import { type Ctx, expressSuite } from './helpers/express-suite';

expressSuite(anyTest as TestFn<Ctx>);
