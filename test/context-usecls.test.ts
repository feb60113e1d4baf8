// The same context tests when the application called Sequelize.useCLS(ns): the tenant lives in that
// namespace, beside the CLS transaction, and transactions are picked up without passing them.
import anyTest, { type TestFn } from 'ava';
import { createNamespace } from 'cls-hooked';
import { Sequelize } from 'sequelize';
import { getCurrentTenantId, withTenant } from '../src/index';
import { contextSuite } from './helpers/context-suite';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
const ns = createNamespace('smt-test-usecls');
Sequelize.useCLS(ns);
test.before(async (t) => {
  t.context = await createFixture();
});
test.after.always(async (t) => t.context?.close());

contextSuite(test, /^cls-hooked:smt-test-usecls$/);

test.serial('a CLS transaction and the tenant share one context', async (t) => {
  const { sequelize, Product, rows } = t.context;
  await t.context.reset();
  await t.throwsAsync(
    () =>
      withTenant(2, () =>
        sequelize.transaction(async () => {
          t.truthy(ns.get('transaction'));
          await Product.create({ name: 'cls-tx' }); // no { transaction }: CLS passes it
          t.is(await Product.count(), 4);
          t.is(getCurrentTenantId(), 2);
          throw new Error('roll back');
        }),
      ),
    { message: 'roll back' },
  );
  t.deepEqual(
    (await rows('products')).filter((r) => r.name === 'cls-tx'),
    [],
  );
  await withTenant(1, () => sequelize.transaction(async () => Product.create({ name: 'cls-kept' })));
  t.deepEqual(
    (await rows('products')).filter((r) => r.name === 'cls-kept').map((r) => r.store_id),
    [1],
  );
});
