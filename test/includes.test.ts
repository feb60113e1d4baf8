import anyTest, { type TestFn } from 'ava';
import type { Model } from 'sequelize';
import { Op } from 'sequelize';
import { withoutTenant, withTenant } from '../src/index';
import { type Fixture, fixtureTests } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

// biome-ignore lint/suspicious/noExplicitAny: rows with includes
type Row = Model & Record<string, any>;
const plain = (rows: Row[]) => rows.map((r) => r.get({ plain: true }));
/** The ON clause of the JOIN on `alias` in a statement. */
function on(sql: string, alias: string): string {
  const m = new RegExp(
    `JOIN[^)]*?AS "${alias.replace(/[>-]/g, (c) => `\\${c}`)}"\\)? ON (.*?)(?= (?:LEFT|INNER|RIGHT) |\\) AS | WHERE |;|$)`,
  ).exec(sql);
  return m?.[1] ?? '';
}

test.serial('hasMany include: ON carries the tenant and the co-location equality; LEFT JOIN stays LEFT', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(2, () => Product.findAll({ include: [Purchase], order: [['id', 'ASC']] })));
  t.deepEqual(
    plain(result as Row[]).map((p) => [p.name, p.Purchases.map((u: Row) => [u.id, u.store_id])]),
    [
      ['apple-B', [[2, 2]]],
      ['pear-B', [[3, 2]]],
      ['plum-B', []], // no purchase: still returned (LEFT JOIN)
    ],
  );
  t.regex(sql[0] as string, /LEFT OUTER JOIN "purchases" AS "Purchases"/);
  const cond = on(sql[0] as string, 'Purchases');
  t.regex(cond, /"Purchases"."store_id" = 2/);
  t.regex(cond, /"Product"."store_id" = "Purchases"."store_id"/);
});

test.serial('without the patch tenant 1 would see tenant 2 purchases of product 1 (shared id): it does not', async (t) => {
  const { Product, Purchase } = t.context;
  const apple = await withTenant(1, () => Product.findOne({ where: { id: 1 }, include: [Purchase] }));
  t.deepEqual(
    (apple as Row).Purchases.map((p: Row) => p.id),
    [1],
  );
});

test.serial('belongsTo and hasOne includes are scoped', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Purchase.findAll({ include: [Product] })));
  t.deepEqual(
    plain(result as Row[]).map((p) => [p.id, p.Product?.name]),
    [[1, 'apple-A']],
  );
  t.regex(on(sql[0] as string, 'Product'), /"Product"."store_id" = 1 AND "Purchase"."store_id" = "Product"."store_id"/);
  const first = await withTenant(2, () => Product.findOne({ where: { id: 1 }, include: ['firstPurchase'] }));
  t.is((first as Row).firstPurchase?.id, 2);
});

test.serial('nested includes: every level scoped and co-located with its own parent', async (t) => {
  const { Store, Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(1, () => Store.findAll({ include: [{ model: Product, include: [Purchase] }], order: [[Product, 'id', 'ASC']] })),
  );
  const stores = plain(result as Row[]);
  t.is(stores.length, 1);
  t.deepEqual(
    stores[0].Products.map((p: Row) => [p.name, p.Purchases.map((u: Row) => u.id)]),
    [
      ['apple-A', [1]],
      ['pear-A', []],
    ],
  );
  t.regex(on(sql[0] as string, 'Products'), /"Products"."store_id" = 1 AND "Store"."id" = "Products"."store_id"/);
  t.regex(
    on(sql[0] as string, 'Products->Purchases'),
    /"Products->Purchases"."store_id" = 1 AND "Products"."store_id" = "Products->Purchases"."store_id"/,
  );
});

test.serial('required: true makes an INNER JOIN that is still scoped', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Product.findAll({ include: [{ model: Purchase, required: true }] })));
  t.deepEqual(
    (result as Row[]).map((p) => p.name),
    ['apple-A'],
  );
  t.regex(sql[0] as string, /INNER JOIN "purchases" AS "Purchases" ON .*"Purchases"."store_id" = 1/);
});

test.serial('an include with its own where, and with or: true, stays ANDed with the tenant', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const withWhere = await withTenant(2, () => Product.findAll({ include: [{ model: Purchase, where: { qty: { [Op.gte]: 1 } } }] }));
  t.deepEqual((withWhere as Row[]).map((p) => p.name).sort(), ['apple-B', 'pear-B']);
  // or: true makes Sequelize emit `ON fk = pk OR <where>`: the tenant conditions must wrap the OR.
  const { result, sql } = await capture(() =>
    withTenant(1, () => Product.findAll({ include: [{ model: Purchase, where: { qty: 3 }, or: true } as never], order: [['id', 'ASC']] })),
  );
  t.regex(on(sql[0] as string, 'Purchases'), /^\(.* OR .*\) AND "Purchases"."store_id" = 1/);
  for (const p of plain(result as Row[])) for (const u of p.Purchases as Row[]) t.is(u.store_id, 1);
});

test.serial('include.on written by hand is kept, and the tenant conditions are ANDed onto it', async (t) => {
  const { Product, Purchase, sequelize, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, () =>
      Product.findAll({
        include: [
          {
            model: Purchase,
            on: { [Op.and]: [sequelize.where(sequelize.col('Purchases.product_id'), Op.eq, sequelize.col('Product.id'))] },
          },
        ],
        order: [['id', 'ASC']],
      }),
    ),
  );
  t.regex(
    on(sql[0] as string, 'Purchases'),
    /^\(\("Purchases"."product_id" = "Product"."id"\)\) AND "Purchases"."store_id" = 2 AND "Product"."store_id" = "Purchases"."store_id"$/,
  );
  t.deepEqual(
    plain(result as Row[]).map((p) => p.Purchases.length),
    [1, 1, 0],
  );
});

test.serial('include + limit (subquery): the outer join sees the tenant column; required adds a scoped correlated subquery', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, () => Product.findAll({ include: [Purchase], limit: 2, order: [['id', 'ASC']], attributes: ['id', 'name'] })),
  );
  t.deepEqual(
    plain(result as Row[]).map((p) => [p.name, p.Purchases.map((u: Row) => u.id)]),
    [
      ['apple-B', [2]],
      ['pear-B', [3]],
    ],
  );
  t.regex(sql[0] as string, /FROM \(SELECT .*"Product"."store_id".* LIMIT 2\) AS "Product" LEFT OUTER JOIN/);
  t.regex(on(sql[0] as string, 'Purchases'), /"Product"."store_id" = "Purchases"."store_id"/);
  const required = await capture(() =>
    withTenant(1, () => Product.findAll({ include: [{ model: Purchase, required: true }], limit: 5, order: [['id', 'ASC']] })),
  );
  t.deepEqual(
    (required.result as Row[]).map((p) => p.name),
    ['apple-A'],
  );
  t.regex(
    required.sql[0] as string,
    /\( SELECT .* FROM "purchases" AS "Purchases" WHERE .*"Purchases"."store_id" = 1 AND "Purchases"."store_id" = "Product"."store_id"/,
  );
});

test.serial('include + limit on an underscored parent: the ON uses the name the subquery exposes', async (t) => {
  const { Campaign, Ad, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, () => Campaign.findAll({ include: [Ad], limit: 5, attributes: ['id', 'name'] })),
  );
  t.deepEqual(
    plain(result as Row[]).map((c) => [c.name, c.Ads.map((a: Row) => a.text).sort()]),
    [['spring-B', ['ad-B', 'ad-B2']]],
  );
  t.regex(sql[0] as string, /"Campaign"."store_id" AS "storeId"/);
  t.regex(on(sql[0] as string, 'Ads'), /"Campaign"."storeId" = "Ads"."store_id"/);
  const a = await withTenant(1, () => Campaign.findAll({ include: [{ model: Ad, required: true }], limit: 5 }));
  t.deepEqual(
    (a as Row[]).map((c) => c.name),
    ['spring-A'],
  );
});

test.serial('separate: true runs a scoped query of its own', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, () => Product.findAll({ include: [{ model: Purchase, separate: true }], order: [['id', 'ASC']] })),
  );
  t.deepEqual(
    plain(result as Row[]).map((p) => p.Purchases.map((u: Row) => u.id)),
    [[2], [3], []],
  );
  t.is(sql.length, 2);
  t.regex(sql[1] as string, /FROM "purchases" AS "Purchase" WHERE .*"Purchase"."store_id" = 2/);
  const limited = await withTenant(2, () =>
    Product.findAll({ include: [{ model: Purchase, separate: true, limit: 1 }], order: [['id', 'ASC']] }),
  );
  t.deepEqual(
    plain(limited as Row[]).map((p) => p.Purchases.map((u: Row) => u.store_id)),
    [[2], [2], []],
  );
});

test.serial('count and findAndCountAll with include and distinct are scoped', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() =>
    withTenant(2, () => Product.count({ include: [{ model: Purchase, required: true }], distinct: true })),
  );
  t.is(result, 2);
  t.regex(on(sql[0] as string, 'Purchases'), /"Purchases"."store_id" = 2 AND "Product"."store_id" = "Purchases"."store_id"/);
  const page = await withTenant(1, () => Product.findAndCountAll({ include: [Purchase], distinct: true, limit: 1 }));
  t.is(page.count, 2);
  t.is(page.rows.length, 1);
});

test.serial('belongsToMany: through and target both scoped, co-located inside, tied to the parent outside', async (t) => {
  const { Product, Tag, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Product.findAll({ include: [Tag], order: [['id', 'ASC']] })));
  t.deepEqual(
    plain(result as Row[]).map((p) => [p.name, p.Tags.map((g: Row) => g.label)]),
    [
      ['apple-A', ['red-A']],
      ['pear-A', []],
    ],
  );
  const s = sql[0] as string;
  t.regex(
    s,
    /INNER JOIN "tags" AS "Tags" ON \("Tags"."id" = "Tags->ProductTag"."tag_id"\) AND "Tags->ProductTag"."store_id" = 1 AND "Tags"."store_id" = 1 AND "Tags"."store_id" = "Tags->ProductTag"."store_id"\)/,
  );
  t.regex(s, /\) ON \("Product"."id" = "Tags->ProductTag"."product_id"\) AND "Product"."store_id" = "Tags->ProductTag"."store_id"/);
  const b = await withTenant(2, () => Product.findOne({ where: { id: 1 }, include: [{ model: Tag, required: true }], limit: 1 } as never));
  t.deepEqual((b as unknown as Row).Tags.map((g: Row) => g.label).sort(), ['red-B', 'sweet-B']);
});

test.serial('a global model include is left alone; a tenant include under a global root is scoped', async (t) => {
  const { Product, Category, capture } = t.context;
  const { sql } = await capture(() => withTenant(1, () => Product.findAll({ include: [Category] })));
  t.notRegex(on(sql[0] as string, 'Category'), /store_id/);
  const { result } = await capture(() => withTenant(2, () => Category.findAll({ include: [Product], order: [['id', 'ASC']] })));
  t.deepEqual(
    plain(result as Row[]).map((c) => [c.name, c.Products.map((p: Row) => p.name)]),
    [
      ['fruit', ['apple-B']],
      ['veg', []],
    ],
  );
});

test.serial('with no tenant the co-location equality is still emitted (what Citus needs), and no tenant constant', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { result, sql } = await capture(() => withoutTenant(() => Product.findAll({ include: [Purchase] })));
  t.is((result as Row[]).length, 5);
  const cond = on(sql[0] as string, 'Purchases');
  t.regex(cond, /"Product"."store_id" = "Purchases"."store_id"/);
  t.notRegex(cond, /= \d/);
  // The shared product id 1 no longer joins tenant 1's product to tenant 2's purchase.
  const apples = plain(result as Row[]).filter((p) => p.id === 1);
  t.deepEqual(apples.map((p) => [p.store_id, p.Purchases.map((u: Row) => u.store_id)]).sort(), [
    [1, [1]],
    [2, [2]],
  ]);
});

test.serial('several tenants: includes use IN (...)', async (t) => {
  const { Product, Purchase, capture } = t.context;
  const { sql } = await capture(() => withTenant([1, 2], () => Product.findAll({ include: [Purchase] })));
  t.regex(on(sql[0] as string, 'Purchases'), /"Purchases"."store_id" IN \(1, 2\)/);
});
