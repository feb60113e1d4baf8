// Every join kind an include can produce keeps the tenant: a RIGHT OUTER JOIN keeps all rows of its right
// side whatever its ON says, so the right side is the tenant's rows only.
import anyTest, { type TestFn } from 'ava';
import type { Model } from 'sequelize';
import { withTenant } from '../src/index';
import { type Fixture, fixtureTests } from './helpers/fixture';

const test = fixtureTests(anyTest as TestFn<Fixture>);

// biome-ignore lint/suspicious/noExplicitAny: rows with includes
type Row = Model & Record<string, any>;

test.serial('right: true from a global table returns only the tenant rows of the tenant table', async (t) => {
  const { Category, Product, capture } = t.context;
  const { result, sql } = await capture(() => withTenant(1, () => Category.findAll({ include: [{ model: Product, right: true }] })));
  const products = (result as Row[]).flatMap((c) => (c.Products as Row[]).map((p) => [p.get('store_id'), p.get('name')]));
  t.deepEqual(
    products.map((p) => p[0]).filter((s) => s !== 1),
    [],
  );
  t.regex(sql[0] as string, /RIGHT OUTER JOIN \(SELECT \* FROM "products" WHERE "store_id" = 1\) AS "Products"/);
});

test.serial('right: true under a limit (root in a subquery) returns only the tenant rows', async (t) => {
  const { Product, Purchase, Store } = t.context;
  const rows = (await withTenant(1, () => Product.findAll({ include: [{ model: Purchase, right: true }], limit: 2 }))) as Row[];
  const stores = rows.flatMap((p) => (p.Purchases as Row[]).map((u) => u.get('store_id')));
  t.deepEqual(
    stores.filter((s) => s !== 1),
    [],
  );
  const nested = (await withTenant(2, () =>
    Store.findAll({ include: [{ model: Product, include: [{ model: Purchase, right: true }] }] }),
  )) as Row[];
  const deep = nested.flatMap((s) => (s.Products as Row[]).flatMap((p) => (p.Purchases as Row[]).map((u) => u.get('store_id'))));
  t.deepEqual(
    deep.filter((s) => s !== 2),
    [],
  );
});

test.serial('right: true with required: true is an INNER JOIN and stays scoped', async (t) => {
  const { Category, Product } = t.context;
  const rows = (await withTenant(2, () => Category.findAll({ include: [{ model: Product, right: true, required: true }] }))) as Row[];
  t.deepEqual(
    rows.flatMap((c) => (c.Products as Row[]).map((p) => p.get('name'))),
    ['apple-B'],
  );
});
