import anyTest, { type TestFn } from 'ava';
import { Op } from 'sequelize';
import { getCurrentTenantId, withoutTenant, withTenant } from '../src/index';
import { type Fixture, fixtureTests, ORG_A } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

const names = (rows: Array<{ get(k: string): unknown }>) => rows.map((r) => r.get('name')).sort();

test.serial('findAll returns only the current tenant rows, and the SQL carries the tenant predicate', async (t) => {
  const { Product, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Product.findAll()));
  t.deepEqual(names(result), ['apple-A', 'pear-A']);
  t.is(sql.length, 1);
  t.regex(sql[0] as string, /FROM "products" AS "Product" WHERE "Product"."store_id" = 1;/);
});

test.serial(
  'findByPk of an id that the other tenant also holds returns the current tenant row; of an id only the other holds, null',
  async (t) => {
    const { Product, Purchase } = t.context;
    await withTenant(1, async () => {
      const rows = await Product.findAll({ where: { id: 1 } });
      t.deepEqual(names(rows), ['apple-A']);
      t.is(await Product.findOne({ where: { id: 3 } }), null); // plum-B is tenant 2's
      t.is(await Purchase.findByPk(2), null); // plain id key: purchase 2 is tenant 2's
      t.is((await Purchase.findByPk(1))?.get('store_id'), 1);
    });
  },
);

test.serial('findOne and findAndCountAll are scoped', async (t) => {
  const { Product, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(2, () => Product.findAndCountAll({ order: [['id', 'ASC']] })));
  t.is(result.count, 3);
  t.deepEqual(names(result.rows), ['apple-B', 'pear-B', 'plum-B']);
  t.is(sql.length, 2);
  for (const s of sql) t.regex(s, /"Product"."store_id" = 2/);
  t.is((await withTenant(2, () => Product.findOne({ where: { name: 'apple-A' } }))) ?? null, null);
});

test.serial('an explicit where on another tenant returns nothing (the filters AND)', async (t) => {
  const { Product, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Product.findAll({ where: { store_id: 2 } })));
  t.deepEqual(result, []);
  t.regex(sql[0] as string, /\(\("Product"."store_id" = 2\) AND "Product"."store_id" = 1\)/);
});

test.serial('where as a literal, an array, or with Op.or stays ANDed with the tenant', async (t) => {
  const { Product, sequelize } = t.context;
  await withTenant(1, async () => {
    t.deepEqual(names(await Product.findAll({ where: { [Op.or]: [{ name: 'apple-B' }, { name: 'pear-A' }] } })), ['pear-A']);
    t.deepEqual(names(await Product.findAll({ where: sequelize.literal(`name LIKE 'apple%'`) })), ['apple-A']);
    t.deepEqual(names(await Product.findAll({ where: sequelize.where(sequelize.col('price'), Op.gt, 15) })), ['pear-A']);
  });
});

test.serial('count, max, min, sum and aggregate are scoped', async (t) => {
  const { Product, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, async () => ({
      count: await Product.count(),
      max: await Product.max('price'),
      min: await Product.min('price'),
      sum: await Product.sum('price'),
      agg: await Product.aggregate('stock', 'sum'),
    })),
  );
  t.deepEqual(result, { count: 3, max: 31, min: 11, sum: 63, agg: 21 });
  t.is(sql.length, 5);
  for (const s of sql) t.regex(s, /WHERE "Product"."store_id" = 2/);
});

test.serial('count with group and distinct is scoped', async (t) => {
  const { Purchase } = t.context;
  const grouped = await withTenant(2, () => Purchase.count({ group: ['product_id'] }));
  t.deepEqual(
    (grouped as unknown as Array<{ product_id: number; count: number }>).sort((a, b) => a.product_id - b.product_id),
    [
      { product_id: 1, count: 1 },
      { product_id: 2, count: 1 },
    ],
  );
  t.is(await withTenant(1, () => Purchase.count({ distinct: true, col: 'product_id' })), 1);
});

test.serial('several tenants: every read becomes IN (...)', async (t) => {
  const { Product, capture } = t.context;
  const { result, sql } = await capture(() => withTenant([1, 2], () => Product.count()));
  t.is(result, 5);
  t.regex(sql[0] as string, /"Product"."store_id" IN \(1, 2\)/);
  t.deepEqual(await withTenant([1, 3], () => Product.count()), 2);
});

test.serial('a tenant given as an instance, a string or a bigint scopes the same', async (t) => {
  const { Store, Product } = t.context;
  const store = await withoutTenant(() => Store.findByPk(2));
  t.truthy(store);
  if (!store) return;
  t.is(await withTenant(store, () => Product.count()), 3);
  t.is(await withTenant(store, () => getCurrentTenantId()), 2);
  t.is(await withTenant('2', () => Product.count()), 3);
  t.is(await withTenant(2n, () => Product.count()), 3);
  t.is(await withTenant([store, 1n], () => Product.count()), 5);
});

test.serial('the tenant table itself is scoped by its key', async (t) => {
  const { Store, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(2, () => Store.findAll()));
  t.deepEqual(names(result), ['B']);
  t.regex(sql[0] as string, /WHERE "Store"."id" = 2/);
});

test.serial('global models are never scoped', async (t) => {
  const { Category, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Category.findAll()));
  t.is(result.length, 2);
  t.notRegex(sql[0] as string, /WHERE/);
});

test.serial('a custom tenant column name, an underscored model and a field: mapping are scoped by their column', async (t) => {
  const { Note, Review, Coupon, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, async () => ({
      notes: (await Note.findAll()).map((n) => n.get('body')),
      reviews: (await Review.findAll()).map((r) => r.get('stars')),
      coupons: (await Coupon.findAll({ order: [['code', 'ASC']] })).map((c) => c.get('code')),
    })),
  );
  t.deepEqual(result, { notes: ['note-B'], reviews: [2], coupons: ['ONLYB', 'SAVE'] });
  t.regex(sql[0] as string, /"Note"."acc_id" = 2/);
  t.regex(sql[1] as string, /"Review"."store_id" = 2/);
  t.regex(sql[2] as string, /"Coupon"."shop_ref" = 2/);
});

test.serial('a UUID tenant scopes its models', async (t) => {
  const { Doc, Org } = t.context;
  await withTenant(ORG_A, async () => {
    t.deepEqual(
      (await Doc.findAll()).map((d) => d.get('title')),
      ['doc-A'],
    );
    t.deepEqual(
      (await Org.findAll()).map((o) => o.get('name')),
      ['org-A'],
    );
  });
});

test.serial('a partial attributes selection is still scoped, and reload after it works', async (t) => {
  const { Product, capture } = t.context;
  await withTenant(2, async () => {
    const { result, sql } = await capture(() => Product.findAll({ attributes: ['id', 'name'], where: { id: 1 } }));
    t.deepEqual(names(result), ['apple-B']);
    t.regex(sql[0] as string, /"Product"."store_id" = 2/);
    const one = await Product.findOne({ attributes: ['id', 'store_id'], where: { id: 1 } });
    t.truthy(one);
    await one?.reload();
    t.is(one?.get('name'), 'apple-B');
  });
});

test.serial('reload never reads another tenant row', async (t) => {
  const { Product, Purchase } = t.context;
  const apple = await withTenant(1, () => Product.findOne({ where: { id: 1 } }));
  if (!apple) return t.fail();
  const { sql } = await t.context.capture(() => withTenant(1, () => apple.reload()));
  t.regex(sql[0] as string, /"Product"."id" = 1 AND "Product"."store_id" = 1/);
  t.is(apple.get('name'), 'apple-A');
  // A plain-id row of tenant 2, reloaded under tenant 1: not found.
  const theirs = await withTenant(2, () => Purchase.findByPk(2));
  await t.throwsAsync(() => withTenant(1, async () => theirs?.reload()), { message: /does not exist anymore/ });
});

test.serial('subqueries built with Op.in over a scoped call see only the tenant', async (t) => {
  const { Product, Purchase } = t.context;
  await withTenant(2, async () => {
    const bought = (await Purchase.findAll({ attributes: ['product_id'] })).map((p) => p.get('product_id') as number);
    t.deepEqual(bought.sort(), [1, 2]);
    t.deepEqual(names(await Product.findAll({ where: { id: { [Op.in]: bought } } })), ['apple-B', 'pear-B']);
  });
});

test.serial('no tenant set (default mode): queries run unscoped', async (t) => {
  const { Product, capture } = t.context;
  const { result, sql } = await capture(() => Product.count());
  t.is(result, 5);
  t.notRegex(sql[0] as string, /store_id/);
});

test.serial('withoutTenant runs unscoped inside a tenant block', async (t) => {
  const { Product } = t.context;
  await withTenant(1, async () => {
    t.is(await Product.count(), 2);
    t.is(await withoutTenant(() => Product.count()), 5);
    t.is(await Product.count(), 2);
  });
});
