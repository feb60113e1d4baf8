// Sequelize.useCLS(ns) called while a withTenant block runs on AsyncLocalStorage (a module loaded late):
// the block keeps its tenant; blocks started afterwards use the namespace.
import anyTest, { type TestFn } from 'ava';
import { createNamespace } from 'cls-hooked';
import { Sequelize } from 'sequelize';
import { getCurrentTenantId, withTenant } from '../src/index';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture();
});
test.after.always(async (t) => t.context?.close());

test.serial('a block keeps its tenant across a Sequelize.useCLS(ns) made while it runs', async (t) => {
  const { Product } = t.context;
  const { contextBackendName } = await import('../src/context');
  t.is(contextBackendName(), 'AsyncLocalStorage');
  const seen = await withTenant(1, async () => {
    const before = (await Product.findAll()).map((p) => p.get('store_id'));
    Sequelize.useCLS(createNamespace('smt-late'));
    const after = (await Product.findAll()).map((p) => p.get('store_id'));
    return { before, after, tenant: getCurrentTenantId() };
  });
  t.deepEqual(seen, { before: [1, 1], after: [1, 1], tenant: 1 });
  t.is(contextBackendName(), 'cls-hooked:smt-late');
  t.deepEqual(
    (await withTenant(2, () => Product.findAll())).map((p) => p.get('store_id')),
    [2, 2, 2],
  );
  t.is(getCurrentTenantId(), undefined);
});
