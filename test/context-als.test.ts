import anyTest, { type TestFn } from 'ava';
import { contextSuite } from './helpers/context-suite';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture();
});
test.after.always(async (t) => t.context?.close());

contextSuite(test, /^AsyncLocalStorage$/);
