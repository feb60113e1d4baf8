// Writes that send several statements are refused whole before the first one: a create with nested
// includes whose child names another tenant, a belongsToMany set/add/create with another tenant's through
// values. "Nothing was written" is checked in every table, and in the SQL sent.
import anyTest, { type TestFn } from 'ava';
import type { Model } from 'sequelize';
import { TenantMismatchError, withTenant } from '../src/index';
import { type Fixture, fixtureTests } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

// biome-ignore lint/suspicious/noExplicitAny: association methods
type Row = Model & Record<string, any>;

async function snapshot(f: Fixture) {
  return {
    products: await f.rows('products', 'store_id, id'),
    purchases: await f.rows('purchases', 'store_id, id'),
    tags: await f.rows('tags', 'store_id, id'),
    links: await f.rows('product_tags', 'store_id, id'),
  };
}
const writes = (sql: string[]) => sql.filter((s) => /^(INSERT|UPDATE|DELETE)/.test(s));

test.serial('create with nested includes: a child of another tenant refuses the whole tree before the parent INSERT', async (t) => {
  const f = t.context;
  const { Product, Purchase, Tag } = f;
  const before = await snapshot(f);
  const attempts: Array<() => Promise<unknown>> = [
    () => Product.create({ name: 'p', Purchases: [{ qty: 1 }, { qty: 2, store_id: 2 }] }, { include: [Purchase] }),
    () => Purchase.create({ qty: 1, store_id: 2, Product: { name: 'parent-first' } }, { include: [Product] }),
    () => Product.create({ name: 'p', Tags: [{ label: 'x', store_id: 2 }] }, { include: [Tag] }),
    () => Product.create({ name: 'p', Tags: [{ label: 'x', ProductTag: { store_id: 2 } }] }, { include: [Tag] }),
    () => Product.bulkCreate([{ name: 'p1' }, { name: 'p2', Purchases: [{ qty: 1, store_id: 2 }] }], { include: [Purchase] }),
  ];
  const { sql } = await f.capture(async () => {
    for (const attempt of attempts) await t.throwsAsync(() => withTenant(1, attempt), { instanceOf: TenantMismatchError });
  });
  t.deepEqual(writes(sql), []);
  t.deepEqual(await snapshot(f), before);
  // the same trees under the right tenant are written whole
  const made = (await withTenant(1, () =>
    Product.create({ name: 'tree', Purchases: [{ qty: 4 }], Tags: [{ label: 'new' }] }, { include: [Purchase, Tag] }),
  )) as Row;
  t.is(made.get('store_id'), 1);
  const after = await snapshot(f);
  t.deepEqual(
    after.purchases.filter((p) => p.qty === 4).map((p) => p.store_id),
    [1],
  );
  t.deepEqual(
    after.links.filter((l) => l.product_id === made.get('id')).map((l) => l.store_id),
    [1],
  );
});

test.serial('belongsToMany set/add/create with another tenant in the through values: refused before any link changes', async (t) => {
  const f = t.context;
  const { Product, Tag } = f;
  const product = (await withTenant(2, () => Product.findOne({ where: { id: 1 } }))) as Row;
  const tag2 = (await withTenant(2, () => Tag.findOne({ where: { id: 2 } }))) as Row;
  const before = await snapshot(f);
  const { sql } = await f.capture(async () => {
    await t.throwsAsync(() => withTenant(2, () => product.setTags([tag2], { through: { store_id: 1 } })), {
      instanceOf: TenantMismatchError,
    });
    await t.throwsAsync(() => withTenant(2, () => product.addTag(tag2, { through: { store_id: 3 } })), { instanceOf: TenantMismatchError });
    await t.throwsAsync(() => withTenant(2, () => product.createTag({ label: 'n' }, { through: { store_id: 1 } })), {
      instanceOf: TenantMismatchError,
    });
    tag2.ProductTag = { store_id: 1 };
    await t.throwsAsync(() => withTenant(2, () => product.setTags([tag2])), { instanceOf: TenantMismatchError });
    delete tag2.ProductTag;
  });
  t.deepEqual(writes(sql), []);
  t.deepEqual(await snapshot(f), before);
  await withTenant(2, () => product.setTags([tag2], { through: { store_id: 2 } }));
  t.deepEqual(
    (await f.rows('product_tags', 'store_id, id')).filter((l) => l.store_id === 2).map((l) => [l.product_id, l.tag_id]),
    [[1, 2]],
  );
});
