// Under several tenants (withTenant([1, 2])) a row still belongs to one tenant: writes through an
// instance and association methods of a source row are narrowed to that row's tenant; a row that could
// belong to any of them is not created. Tenants 1 and 2 share product, purchase and tag keys.
import anyTest, { type TestFn } from 'ava';
import type { Model } from 'sequelize';
import { TenantMismatchError, withTenant } from '../src/index';
import { type Fixture, fixtureTests } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

// biome-ignore lint/suspicious/noExplicitAny: association methods
type Row = Model & Record<string, any>;

test.serial('association methods of a source row act in that row’s tenant only', async (t) => {
  const { Product, Tag, rows, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant([1, 2], async () => {
      const p = (await Product.findOne({ where: { id: 1, store_id: 1 } })) as Row;
      const purchases = (await p.getPurchases()) as Row[];
      await p.setPurchases([]);
      await p.removeTags([1]);
      return purchases.map((u) => u.get('store_id'));
    }),
  );
  t.deepEqual(result, [1]);
  for (const s of sql.filter((x) => /purchases|product_tags/.test(x))) t.notRegex(s, /IN \(1, 2\)/);
  const purchases = await rows('purchases', 'store_id, id');
  t.deepEqual(
    purchases.map((u) => [u.store_id, u.id, u.product_id]),
    [
      [1, 1, null],
      [2, 2, 1],
      [2, 3, 2],
    ],
  );
  t.deepEqual(
    (await rows('product_tags', 'store_id, id')).map((l) => [l.store_id, l.product_id, l.tag_id]),
    [
      [2, 1, 1],
      [2, 1, 2],
    ],
  );
  // set with new links and a hasOne set of a new row: run whole, in the source's tenant
  await withTenant([1, 2], async () => {
    const p = (await Product.findOne({ where: { id: 2, store_id: 1 } })) as Row;
    const tag = await Tag.findOne({ where: { id: 2, store_id: 1 } });
    await p.setTags([tag]);
    await p.setFirstPurchase((t.context.Purchase as unknown as { build(v: object): Row }).build({ qty: 5 }));
  });
  t.deepEqual(
    (await rows('product_tags', 'store_id, id')).filter((l) => l.product_id === 2).map((l) => [l.store_id, l.tag_id]),
    [[1, 2]],
  );
  t.deepEqual(
    (await rows('purchases', 'store_id, id')).filter((u) => u.qty === 5).map((u) => [u.store_id, u.product_id]),
    [[1, 2]],
  );
});

test.serial('a global source creating tenant rows under several tenants is refused before any SQL', async (t) => {
  const { Category, rows, capture } = t.context;
  const category = (await withTenant(1, () => Category.findByPk(1))) as Row;
  const before = await rows('products', 'store_id, id');
  const { sql } = await capture(async () => {
    await t.throwsAsync(() => withTenant([1, 2], () => category.createProduct({ name: 'whose?' })), {
      instanceOf: TenantMismatchError,
      message: /several tenants/,
    });
  });
  t.deepEqual(sql, []);
  t.deepEqual(await rows('products', 'store_id, id'), before);
});

test.serial('generators returned by a block run every step with its tenant, wherever they are iterated', async (t) => {
  const { Product } = t.context;
  const gen = withTenant(1, async function* () {
    yield (await Product.findAll()).map((p) => p.get('store_id'));
    yield (await Product.count()) as number;
  });
  const seen: unknown[] = [];
  await withTenant(2, async () => {
    for await (const value of gen) seen.push(value);
  });
  t.deepEqual(seen, [[1, 1], 2]);
  const sync = withTenant(2, function* () {
    yield Product.count();
  });
  t.deepEqual(await Promise.all([...sync]), [3]);
});

test.serial('a target of another tenant handed to a narrowed association method is refused before any SQL', async (t) => {
  const { Product, Purchase, Tag, Category, rows, capture } = t.context;
  const p1 = (await withTenant(1, () => Product.findOne({ where: { id: 1 } }))) as Row;
  const u2 = (await withTenant(2, () => Purchase.findByPk(2))) as Row;
  const t2 = (await withTenant(2, () => Tag.findOne({ where: { id: 2 } }))) as Row;
  const x2 = (await withTenant(2, () => Product.findOne({ where: { id: 2 } }))) as Row;
  const pu1 = (await withTenant(1, () => Purchase.findByPk(1))) as Row;
  const category = (await withTenant(1, () => Category.findByPk(1))) as Row;
  const before = {
    purchases: await rows('purchases', 'store_id, id'),
    links: await rows('product_tags', 'store_id, id'),
    products: await rows('products', 'store_id, id'),
  };
  const { sql } = await capture(async () => {
    for (const call of [
      () => p1.addPurchase(u2),
      () => p1.addTag(t2),
      () => p1.setFirstPurchase(u2), // hasOne set: would unlink the old first purchase, then refuse
      () => pu1.setProduct(x2),
      () => category.addProduct(x2), // a global source: whose product 2 is it?
      () => category.removeProduct(x2),
    ]) {
      await t.throwsAsync(() => withTenant([1, 2], call), { instanceOf: TenantMismatchError });
    }
  });
  t.deepEqual(
    sql.filter((s) => /^(INSERT|UPDATE|DELETE)/.test(s)),
    [],
  );
  t.deepEqual(
    {
      purchases: await rows('purchases', 'store_id, id'),
      links: await rows('product_tags', 'store_id, id'),
      products: await rows('products', 'store_id, id'),
    },
    before,
  );
});
