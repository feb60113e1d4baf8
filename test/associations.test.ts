import anyTest, { type TestFn } from 'ava';
import type { Model } from 'sequelize';
import { TenantMismatchError, withoutTenant, withTenant } from '../src/index';
import { createFixture, type Fixture } from './helpers/fixture';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture();
  const { Product, Purchase } = t.context;
  Product.hasMany(Purchase, { as: 'cascadePurchases', foreignKey: 'product_id', onDelete: 'CASCADE', hooks: true, constraints: false });
});
test.after.always(async (t) => t.context?.close());
test.beforeEach(async (t) => t.context.reset());

// biome-ignore lint/suspicious/noExplicitAny: association accessors are added at run time
type Row = Model & Record<string, any>;
const product = (f: Fixture, tenant: number, id: number) => withTenant(tenant, () => f.Product.findOne({ where: { id } })) as Promise<Row>;
const purchases = async (f: Fixture) => (await f.rows('purchases')).map((r) => [r.id, r.store_id, r.product_id]);
const links = async (f: Fixture) => (await f.rows('product_tags')).map((r) => [r.store_id, r.product_id, r.tag_id]);

test.serial('hasMany get / count / has return only the current tenant rows that share the product id', async (t) => {
  const { capture } = t.context;
  const appleA = await product(t.context, 1, 1);
  const appleB = await product(t.context, 2, 1);
  const { result, sql } = await capture(() => withTenant(1, () => appleA.getPurchases()));
  t.deepEqual(
    (result as Row[]).map((p) => p.id),
    [1],
  );
  t.regex(sql[0] as string, /"product_id" = 1 AND "Purchase"."store_id" = 1/);
  t.deepEqual(
    (await withTenant(2, () => appleB.getPurchases())).map((p: Row) => p.id),
    [2],
  );
  t.is(await withTenant(1, () => appleA.countPurchases()), 1);
  t.false(await withTenant(1, () => appleA.hasPurchase(2)));
  t.true(await withTenant(2, () => appleB.hasPurchase(2)));
});

test.serial('hasMany set([]) / remove unlink only the current tenant rows', async (t) => {
  const appleA = await product(t.context, 1, 1);
  await withTenant(1, () => appleA.setPurchases([]));
  t.deepEqual(await purchases(t.context), [
    [1, 1, null],
    [2, 2, 1], // tenant 2's purchase of its own product 1: untouched
    [3, 2, 2],
  ]);
  const pearB = await product(t.context, 2, 2);
  await withTenant(2, () => pearB.removePurchase(3));
  await withTenant(1, () => appleA.removePurchase(2)); // tenant 2's id under tenant 1: nothing
  t.deepEqual(await purchases(t.context), [
    [1, 1, null],
    [2, 2, 1],
    [3, 2, null],
  ]);
});

test.serial('hasMany add and create stamp and scope; another tenant row by key is not taken over', async (t) => {
  const pearA = await product(t.context, 1, 2);
  await withTenant(1, () => pearA.addPurchase(2)); // purchase 2 is tenant 2's
  await withTenant(1, () => pearA.addPurchase(1));
  const made = await withTenant(1, () => pearA.createPurchase({ qty: 9 }));
  t.is(made.get('store_id'), 1);
  t.deepEqual(await purchases(t.context), [
    [1, 1, 2],
    [2, 2, 1],
    [3, 2, 2],
    [11, 1, 2],
  ]);
});

test.serial('hasOne get / set / create', async (t) => {
  const appleB = await product(t.context, 2, 1);
  t.is((await withTenant(2, () => appleB.getFirstPurchase()))?.id, 2);
  const appleA = await product(t.context, 1, 1);
  t.is((await withTenant(1, () => appleA.getFirstPurchase()))?.id, 1);
  const made = await withTenant(1, () => appleA.createFirstPurchase({ qty: 4 }));
  t.is(made.get('store_id'), 1);
  await withTenant(1, () => appleA.setFirstPurchase(null));
  const all = await purchases(t.context);
  t.deepEqual(
    all.filter((p) => p[1] === 2),
    [
      [2, 2, 1],
      [3, 2, 2],
    ],
  );
});

test.serial('belongsTo get / set / create follow the current tenant', async (t) => {
  const { Purchase, Product, rows } = t.context;
  const purchase2 = (await withTenant(2, () => Purchase.findByPk(2))) as Row;
  t.is((await withTenant(2, () => purchase2.getProduct()))?.name, 'apple-B'); // not apple-A, which shares id 1
  const plumB = (await withTenant(2, () => Product.findOne({ where: { id: 3 } }))) as Row;
  await withTenant(2, () => purchase2.setProduct(plumB));
  const made = await withTenant(2, () => purchase2.createProduct({ name: 'new-B' }));
  t.is(made.get('store_id'), 2);
  t.deepEqual((await rows('purchases')).find((r) => r.id === 2)?.product_id, made.get('id'));
});

test.serial('belongsToMany get / count / has through the scoped join table', async (t) => {
  const appleA = await product(t.context, 1, 1);
  const appleB = await product(t.context, 2, 1);
  const { result, sql } = await t.context.capture(() => withTenant(1, () => appleA.getTags()));
  t.deepEqual(
    (result as Row[]).map((g) => g.label),
    ['red-A'],
  );
  t.regex(sql[0] as string, /"ProductTag"."store_id" = 1 AND "Tag"."store_id" = "ProductTag"."store_id"/);
  t.deepEqual((await withTenant(2, () => appleB.getTags())).map((g: Row) => g.label).sort(), ['red-B', 'sweet-B']);
  t.is(await withTenant(1, () => appleA.countTags()), 1);
  t.false(await withTenant(1, () => appleA.hasTag(2)));
  t.true(await withTenant(2, () => appleB.hasTag(2)));
});

test.serial('belongsToMany add / set / remove / create stamp and scope the join rows', async (t) => {
  const { Tag } = t.context;
  const pearA = await product(t.context, 1, 2);
  const sweetA = (await withTenant(1, () => Tag.findOne({ where: { id: 2 } }))) as Row;
  await withTenant(1, () => pearA.addTag(sweetA));
  t.deepEqual(await links(t.context), [
    [1, 1, 1],
    [2, 1, 1],
    [2, 1, 2],
    [1, 2, 2],
  ]);
  const appleA = await product(t.context, 1, 1);
  await withTenant(1, () => appleA.setTags([]));
  await withTenant(1, () => pearA.removeTag(sweetA));
  t.deepEqual(await links(t.context), [
    [2, 1, 1],
    [2, 1, 2],
  ]);
  const made = await withTenant(1, () => pearA.createTag({ label: 'new-A' }));
  t.is(made.get('store_id'), 1);
  t.deepEqual((await links(t.context)).at(-1), [1, 2, made.get('id')]);
});

test.serial('association methods on an instance of another tenant are refused before any SQL', async (t) => {
  const appleB = await product(t.context, 2, 1);
  const purchase1 = (await withTenant(1, () => t.context.Purchase.findByPk(1))) as Row;
  const before = { p: await purchases(t.context), l: await links(t.context) };
  const { sql } = await t.context.capture(async () => {
    for (const call of [
      () => appleB.getPurchases(),
      () => appleB.countPurchases(),
      () => appleB.setPurchases([]),
      () => appleB.createPurchase({ qty: 1 }),
      () => appleB.getTags(),
      () => appleB.setTags([]),
      () => appleB.addTag(1),
    ]) {
      const err = await t.throwsAsync(() => withTenant(1, call), { instanceOf: TenantMismatchError });
      t.regex(err?.message ?? '', /source Product row belongs to tenant 2/);
    }
    const appleA = await product(t.context, 1, 1);
    const b2 = (await withTenant(2, () => t.context.Purchase.findByPk(2))) as Row;
    await t.throwsAsync(() => withTenant(1, () => appleA.addPurchase(b2)), { instanceOf: TenantMismatchError, message: /target Purchase/ });
    await t.throwsAsync(() => withTenant(2, () => appleB.setPurchases([purchase1])), { instanceOf: TenantMismatchError });
  });
  t.false(sql.some((s) => /^(UPDATE|INSERT|DELETE)/.test(s)));
  t.deepEqual({ p: await purchases(t.context), l: await links(t.context) }, before);
});

test.serial('no association result is carried across tenants', async (t) => {
  const appleA = await product(t.context, 1, 1);
  const appleB = await product(t.context, 2, 1);
  const seen: number[][] = [];
  for (const [tenant, p] of [
    [1, appleA],
    [2, appleB],
    [1, appleA],
  ] as const) {
    seen.push((await withTenant(tenant, () => p.getPurchases())).map((x: Row) => x.id));
  }
  t.deepEqual(seen, [[1], [2], [1]]);
  t.deepEqual((await withoutTenant(() => appleA.getPurchases())).map((x: Row) => x.id).sort(), [1, 2]);
});

test.serial('cascade deletes (onDelete CASCADE, hooks: true) stay in the tenant', async (t) => {
  const appleA = await product(t.context, 1, 1);
  await withTenant(1, () => appleA.destroy());
  t.deepEqual(await purchases(t.context), [
    [2, 2, 1],
    [3, 2, 2],
  ]);
});
