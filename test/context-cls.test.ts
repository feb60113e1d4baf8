// The same context tests with a cls-hooked namespace given to multitenant({ namespace }).
import anyTest, { type TestFn } from 'ava';
import { createNamespace } from 'cls-hooked';
import { contextSuite } from './helpers/context-suite';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
const ns = createNamespace('smt-test-explicit');
test.before(async (t) => {
  t.context = await createFixture({ namespace: ns });
});
test.after.always(async (t) => t.context?.close());

contextSuite(test, /^cls-hooked:smt-test-explicit$/);
