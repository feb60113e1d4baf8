import anyTest, { type TestFn } from 'ava';
import { MissingTenantError, withoutTenant, withTenant } from '../src/index';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture({ strict: true });
});
test.after.always(async (t) => t.context?.close());
test.beforeEach(async (t) => t.context.reset());

test.serial('strict: every read and write of a tenant model with no tenant throws MissingTenantError before any SQL', async (t) => {
  const { Product, Purchase, Store, capture } = t.context;
  const loaded = await withoutTenant(() => Purchase.findByPk(1));
  if (!loaded) return t.fail();
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['find', () => Product.findAll()],
    ['find', () => Product.findByPk(1)],
    ['find', () => Product.findOne()],
    ['aggregate', () => Product.count()],
    ['aggregate', () => Product.max('price')],
    ['create', () => Product.create({ name: 'x' })],
    ['bulkCreate', () => Product.bulkCreate([{ name: 'x' }])],
    ['upsert', () => Product.upsert({ id: 1, name: 'x' })],
    ['update', () => Product.update({ price: 1 }, { where: {} })],
    ['destroy', () => Product.destroy({ where: {} })],
    ['destroy', () => Product.destroy({ truncate: true })],
    ['increment', () => Product.increment('stock', { where: {} })],
    ['save', () => loaded.update({ qty: 9 })],
    ['destroy', () => loaded.destroy()],
    ['find', () => Store.findAll()],
  ];
  const { sql } = await capture(async () => {
    for (const [operation, call] of calls) {
      const err = await t.throwsAsync(call, { instanceOf: MissingTenantError });
      t.is(err?.operation, operation);
      t.regex(err?.message ?? '', /no tenant is set \(strict mode\)/);
    }
  });
  t.deepEqual(sql, []);
  t.is((await t.context.rows('products')).length, 5);
  t.is((await t.context.rows('purchases')).find((r) => r.id === 1)?.qty, 1);
});

test.serial('strict: the error names the model and the operation', async (t) => {
  const err = await t.throwsAsync(() => t.context.Product.create({ name: 'x' }), { instanceOf: MissingTenantError });
  t.is(err?.model, 'Product');
  t.is(err?.operation, 'create');
  t.is(err?.tenant, undefined);
  t.regex(err?.message ?? '', /^Product\.create: no tenant is set/);
});

test.serial('strict: withoutTenant, a tenant, and global models run', async (t) => {
  const { Product, Category } = t.context;
  t.is(await withoutTenant(() => Product.count()), 5);
  t.is(await withTenant(1, () => Product.count()), 2);
  t.is(await Category.count(), 2);
});

test.serial('strict: rows of the tenant table itself can be created with no tenant set', async (t) => {
  const { Store, rows } = t.context;
  await Store.create({ name: 'D' });
  t.deepEqual(
    (await rows('stores')).map((r) => r.name),
    ['A', 'B', 'C', 'D'],
  );
});

test.serial('strict: upserts of the tenant table with no tenant are refused (they may UPDATE an existing store)', async (t) => {
  const { Store, rows, capture } = t.context;
  const { sql } = await capture(async () => {
    await t.throwsAsync(() => Store.upsert({ id: 2, name: 'taken' }), { instanceOf: MissingTenantError, message: /Store\.upsert/ });
    await t.throwsAsync(() => Store.bulkCreate([{ id: 3, name: 'taken' }], { updateOnDuplicate: ['name'] }), {
      instanceOf: MissingTenantError,
    });
  });
  t.deepEqual(sql, []);
  t.deepEqual(
    (await rows('stores')).map((r) => r.name),
    ['A', 'B', 'C'],
  );
  // an insert that may update, however it is spelled, is an upsert
  await t.throwsAsync(() => Store.create({ id: 2, name: 'taken' }, { updateOnDuplicate: ['name'], upsertKeys: ['id'] } as never), {
    instanceOf: MissingTenantError,
  });
  const qi = Store.sequelize?.getQueryInterface() as unknown as { insert(...a: unknown[]): Promise<unknown> };
  await t.throwsAsync(() => qi.insert(null, 'stores', { id: 3, name: 'taken' }, { updateOnDuplicate: ['name'], upsertKeys: ['id'] }), {
    instanceOf: MissingTenantError,
  });
  t.deepEqual(
    (await rows('stores')).map((r) => r.name),
    ['A', 'B', 'C'],
  );
  // creating a store (sign-up) still works, and upserting one is possible inside withoutTenant
  await Store.bulkCreate([{ id: 4, name: 'D' }], { ignoreDuplicates: true });
  await withoutTenant(() => Store.upsert({ id: 4, name: 'D2' }));
  t.deepEqual(
    (await rows('stores')).map((r) => r.name),
    ['A', 'B', 'C', 'D2'],
  );
});

test.serial('strict: a store created with nested tenant rows and no tenant is refused whole (the children would need one)', async (t) => {
  const { Store, Product, rows, capture } = t.context;
  const { sql } = await capture(async () => {
    await t.throwsAsync(() => Store.create({ name: 'half', Products: [{ name: 'child' }] } as never, { include: [Product] }), {
      instanceOf: MissingTenantError,
    });
    await t.throwsAsync(() => Store.bulkCreate([{ name: 'half', Products: [{ name: 'child' }] }] as never, { include: [Product] }), {
      instanceOf: MissingTenantError,
    });
  });
  t.deepEqual(sql, []);
  t.deepEqual(
    (await rows('stores')).map((r) => r.name),
    ['A', 'B', 'C'],
  );
});
