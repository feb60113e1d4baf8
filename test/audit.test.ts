// The tenant-safety auditor: a corpus of statements written for it, each classified against the current
// tenant; then the auditor on a live database (raw SQL, hooks: false, modes). The whole suite also runs
// once with audit: 'throw' (SEQUELIZE_MULTITENANT_AUDIT=throw, read by the library, in CI).
import anyTest, { type TestFn } from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import { analysisOf, readingOf } from '../src/audit/auditor';
import { firstUnconstrained } from '../src/audit/evaluate';
import { multitenant, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { normalizeTenant } from '../src/tenant';
import { pgOnly } from './helpers/db';
import { createFixture, type Fixture } from './helpers/fixture';

const offline = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
multitenant(offline, { notice: false });
const def = (name: string, table: string, attrs: Record<string, unknown>, options: Record<string, unknown> = {}) =>
  offline.define(name, attrs as never, { tableName: table, timestamps: false, ...options });
// A fresh definition each time: Sequelize writes `field` into the object it is given.
const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
def('Store', 'stores', { id: key(), name: DataTypes.STRING }, { tenantKey: 'id' });
def(
  'Product',
  'products',
  { id: key(), store_id: key(), name: DataTypes.STRING, category_id: DataTypes.BIGINT },
  { tenantKey: 'store_id' },
);
def('Purchase', 'purchases', { id: key(), store_id: key(), product_id: DataTypes.BIGINT }, { tenantKey: 'store_id' });
def('Tag', 'tags', { id: key(), store_id: key() }, { tenantKey: 'store_id' });
def('ProductTag', 'product_tags', { store_id: key(), product_id: key(), tag_id: key() }, { tenantKey: 'store_id' });
def('Category', 'categories', { id: key(), name: DataTypes.STRING });
def('Order', 'orders', { id: key(), store_id: key() }, { tenantKey: 'store_id', schema: 'shop' });
// tenant columns of the two other kinds: a UUID (letter case ignored) and text (taken as written)
def('Doc', 'docs', { id: key(), org: { type: DataTypes.UUID, primaryKey: true } }, { tenantKey: 'org' });
def('Note', 'notes', { id: key(), team: { type: DataTypes.STRING, primaryKey: true } }, { tenantKey: 'team' });

type Verdict = 'scoped' | 'pass' | `unscoped:${string}` | 'unparsed' | 'unknowable' | 'schema';
async function classify(sql: string, tenant: unknown = 1, bind?: unknown[]): Promise<Verdict> {
  const a = await analysisOf(offline, sql);
  if (a.kind === 'pass' || a.kind === 'unparsed') return a.kind;
  if (a.kind === 'unscoped') return `unscoped:${a.table}`;
  if (a.kind === 'unknowable') return 'unknowable';
  if (a.kind === 'schema') return 'schema';
  // as the auditor does: values read by the type of the tenant columns the statement names
  const t = firstUnconstrained(a.graph, normalizeTenant(tenant, {}), bind, undefined, readingOf(offline, a.graph));
  return t ? `unscoped:${t}` : 'scoped';
}

const corpus: Array<[string, Verdict, unknown?, unknown[]?]> = [
  // scoped
  ['SELECT * FROM products WHERE store_id = 1', 'scoped'],
  ['SELECT * FROM products p WHERE p.store_id = $1', 'scoped', 1, [1]],
  ['SELECT "Product"."id" FROM "products" AS "Product" WHERE "Product"."store_id" = 1 AND "Product"."id" = 5', 'scoped'],
  ['SELECT * FROM products WHERE store_id IN (1)', 'scoped'],
  ['SELECT * FROM products WHERE store_id IN (1, 2)', 'scoped', [1, 2]],
  ['SELECT * FROM products WHERE store_id = ANY($1)', 'scoped', 1, [[1]]],
  ["SELECT * FROM products WHERE store_id = '1'::bigint", 'scoped'],
  ['SELECT * FROM products WHERE (id = 3 AND (store_id = 1 AND name IS NOT NULL))', 'scoped'],
  ['SELECT * FROM products p JOIN purchases u ON u.product_id = p.id AND u.store_id = p.store_id WHERE p.store_id = 1', 'scoped'],
  ['SELECT * FROM products p LEFT JOIN purchases u ON u.product_id = p.id AND u.store_id = 1 WHERE p.store_id = 1', 'scoped'],
  [
    'SELECT * FROM products p LEFT OUTER JOIN purchases u ON p.id = u.product_id AND p.store_id = u.store_id WHERE p.store_id = 1',
    'scoped',
  ],
  ['SELECT * FROM products WHERE store_id = 1 AND id IN (SELECT product_id FROM purchases WHERE store_id = 1)', 'scoped'],
  [
    'SELECT * FROM products p WHERE p.store_id = 1 AND EXISTS (SELECT 1 FROM purchases u WHERE u.product_id = p.id AND u.store_id = p.store_id)',
    'scoped',
  ],
  ['WITH mine AS (SELECT * FROM products WHERE store_id = 1) SELECT * FROM mine', 'scoped'],
  ['SELECT id FROM products WHERE store_id = 1 UNION SELECT id FROM purchases WHERE store_id = 1', 'scoped'],
  [
    'SELECT "Product".*, "Purchases"."id" FROM (SELECT "Product"."id", "Product"."store_id" FROM "products" AS "Product" WHERE "Product"."store_id" = 1 LIMIT 2) AS "Product" LEFT OUTER JOIN "purchases" AS "Purchases" ON "Product"."id" = "Purchases"."product_id" AND "Product"."store_id" = "Purchases"."store_id"',
    'scoped',
  ],
  [
    'SELECT c.*, a.id FROM (SELECT "C"."store_id" AS "storeId" FROM products AS "C" WHERE "C"."store_id" = 1) AS c JOIN purchases a ON c."storeId" = a.store_id',
    'scoped',
  ],
  [
    'SELECT * FROM products p LEFT JOIN (product_tags pt INNER JOIN tags t ON t.id = pt.tag_id AND pt.store_id = 1 AND t.store_id = pt.store_id) ON p.id = pt.product_id AND p.store_id = pt.store_id WHERE p.store_id = 1',
    'scoped',
  ],
  ["UPDATE products SET name = 'x' WHERE id = 1 AND store_id = 1", 'scoped'],
  ['UPDATE "products" SET "name"=$1 WHERE ("id" = $2 AND "store_id" = $3)', 'scoped', 1, ['x', 1, 1]],
  ['DELETE FROM purchases WHERE id = 3 AND store_id = 1', 'scoped'],
  ["INSERT INTO products (id, store_id, name) VALUES (1, 1, 'a')", 'scoped'],
  ['INSERT INTO "products" ("id","store_id","name") VALUES (DEFAULT,$1,$2) RETURNING *', 'scoped', 1, [1, 'a']],
  ["INSERT INTO products (id, store_id, name) VALUES (1, 1, 'a'), (2, 1, 'b')", 'scoped'],
  ["INSERT INTO products (id, store_id, name) VALUES (1, 1, 'a') ON CONFLICT (id, store_id) DO UPDATE SET name = EXCLUDED.name", 'scoped'],
  ['INSERT INTO purchases (store_id, product_id) SELECT store_id, id FROM products WHERE store_id = 1', 'scoped'],
  ['SELECT * FROM shop.orders o WHERE o.store_id = 1', 'scoped'],
  ['SELECT * FROM "shop"."orders" WHERE "store_id" = 1', 'scoped'],
  ['SELECT * FROM stores WHERE id = 1', 'scoped'],
  ['SELECT * FROM products p JOIN categories c ON c.id = p.category_id WHERE p.store_id = 1', 'scoped'],
  ['SELECT count(*) FROM purchases WHERE store_id = 1 GROUP BY product_id', 'scoped'],
  [
    "CREATE OR REPLACE FUNCTION pg_temp.testfunc(OUT response products, OUT sequelize_caught_exception text) RETURNS RECORD AS $func_1$ BEGIN INSERT INTO products (id, store_id, name) VALUES (DEFAULT, 1, 'kiwi') RETURNING * INTO response; EXCEPTION WHEN unique_violation THEN GET STACKED DIAGNOSTICS sequelize_caught_exception = PG_EXCEPTION_DETAIL; END $func_1$ LANGUAGE plpgsql; SELECT (testfunc.response).id FROM pg_temp.testfunc(); DROP FUNCTION IF EXISTS pg_temp.testfunc();",
    'scoped',
  ],
  ['SELECT * FROM "public"."products" WHERE store_id = 1', 'scoped'],
  // nothing to scope
  ['SELECT * FROM categories', 'pass'],
  ['CREATE TABLE x (id int)', 'pass'],
  ['BEGIN', 'pass'],
  ['SET search_path = public', 'unknowable'], // it changes which table an unqualified name is
  ["SELECT setval('products_id_seq', 10)", 'pass'],
  ['SELECT * FROM shop.products', 'pass'], // another schema's table of that name is not the model's
  // unscoped
  ['SELECT * FROM products', 'unscoped:products'],
  ['SELECT * FROM products WHERE store_id = 2', 'unscoped:products'],
  ['SELECT * FROM products WHERE store_id = 1 OR id = 5', 'unscoped:products'],
  ['SELECT * FROM products WHERE store_id IN (1, 2)', 'unscoped:products'],
  ['SELECT * FROM products WHERE NOT (store_id <> 1)', 'unscoped:products'],
  ['SELECT * FROM products p JOIN purchases u ON u.product_id = p.id WHERE p.store_id = 1', 'unscoped:purchases'],
  ['SELECT * FROM products p LEFT JOIN purchases u ON u.product_id = p.id WHERE p.store_id = 1', 'unscoped:purchases'],
  ['SELECT * FROM products p LEFT JOIN purchases u ON u.store_id = 1 AND p.store_id = u.store_id', 'unscoped:products'],
  ['SELECT * FROM products WHERE store_id = 1 AND id IN (SELECT product_id FROM purchases)', 'unscoped:purchases'],
  ['SELECT * FROM products p WHERE p.store_id = 1 AND EXISTS (SELECT 1 FROM purchases u WHERE u.product_id = p.id)', 'unscoped:purchases'],
  ['WITH allp AS (SELECT * FROM products) SELECT * FROM allp', 'unscoped:products'],
  ['SELECT id FROM products WHERE store_id = 1 UNION ALL SELECT id FROM purchases', 'unscoped:purchases'],
  ['SELECT * FROM (SELECT * FROM purchases) AS sub', 'unscoped:purchases'],
  ["UPDATE products SET name = 'x' WHERE id = 1", 'unscoped:products'],
  ['UPDATE products SET store_id = 2 WHERE id = 1 AND store_id = 1', 'unscoped:products'],
  ['DELETE FROM purchases WHERE id = 3', 'unscoped:purchases'],
  ['DELETE FROM purchases USING products WHERE purchases.product_id = products.id AND products.store_id = 1', 'unscoped:purchases'],
  ["INSERT INTO products (id, name) VALUES (1, 'a')", 'unscoped:products'],
  ["INSERT INTO products (id, store_id, name) VALUES (1, 2, 'a')", 'unscoped:products'],
  ["INSERT INTO products (id, store_id, name) VALUES (1, 1, 'a'), (2, 2, 'b')", 'unscoped:products'],
  ["INSERT INTO products (id, store_id, name) VALUES (1, 1, 'a') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name", 'unscoped:products'],
  ['SELECT * FROM products WHERE store_id = $1', 'unscoped:products', 1, [2]],
  ['SELECT * FROM shop.orders', 'unscoped:shop.orders'],
  ['TRUNCATE products', 'unscoped:products'],
  // EXPLAIN over a tenant table: estimates from every tenant's statistics, counts of their rows (ANALYZE)
  ['EXPLAIN ANALYZE SELECT * FROM products', 'unknowable'],
  ['EXPLAIN SELECT * FROM products WHERE store_id = 1', 'unknowable'],
  ['SELECT * FROM stores', 'unscoped:stores'],
  [
    "CREATE OR REPLACE FUNCTION pg_temp.testfunc(OUT response products, OUT sequelize_caught_exception text) RETURNS RECORD AS $func_1$ BEGIN INSERT INTO products (id, store_id, name) VALUES (DEFAULT, 2, 'kiwi') RETURNING * INTO response; EXCEPTION WHEN unique_violation THEN GET STACKED DIAGNOSTICS sequelize_caught_exception = PG_EXCEPTION_DETAIL; END $func_1$ LANGUAGE plpgsql; SELECT (testfunc.response).id FROM pg_temp.testfunc(); DROP FUNCTION IF EXISTS pg_temp.testfunc();",
    'unscoped:products',
  ],
  // the parser rejects it: refused in throw mode, reported in warn mode (fail closed)
  ['SELEC * FROM products', 'unparsed'],
];

anyTest(`a corpus of ${corpus.length} statements is classified right`, async (t) => {
  const wrong: string[] = [];
  for (const [sql, expected, tenant, bind] of corpus) {
    const got = await classify(sql, tenant ?? 1, bind);
    if (got !== expected) wrong.push(`${expected} expected, got ${got}: ${sql}`);
  }
  t.deepEqual(wrong, []);
  t.true(corpus.length >= 40);
  t.log(
    `${corpus.length} statements: ${corpus.filter((c) => c[1] === 'scoped').length} scoped, ${corpus.filter((c) => c[1] === 'pass').length} with nothing to scope, ${corpus.filter((c) => String(c[1]).startsWith('unscoped')).length} unscoped, 1 unparsable`,
  );
});

anyTest('values are read as the tenant column reads them: integers by value, UUIDs in any letter case, text as written', async (t) => {
  const u = '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c';
  t.is(await classify(`SELECT * FROM docs WHERE org = '${u.toUpperCase()}'`, u), 'scoped');
  t.is(await classify('SELECT * FROM docs WHERE org = $1', u.toUpperCase(), [u]), 'scoped');
  t.is(await classify("SELECT * FROM notes WHERE team = 'ACME'", 'acme'), 'unscoped:notes');
  // a text column holding UUID-shaped tenants: two spellings are two tenants there
  t.is(await classify(`SELECT * FROM notes WHERE team = '${u.toUpperCase()}'`, u), 'unscoped:notes');
  // an integer column reads the tenant '01' (or '+1', ' 1') and the value 1 as one tenant, as PostgreSQL does
  for (const given of ['01', '+1', ' 1', 1]) {
    t.is(await classify('SELECT * FROM products WHERE store_id = 1', given), 'scoped');
    t.is(await classify('UPDATE products SET name = $1 WHERE store_id = $2 AND id = $3', given, ['x', 1, 3]), 'scoped');
    t.is(await classify("SELECT * FROM products WHERE store_id = '1'", given), 'scoped');
  }
  t.is(await classify('SELECT * FROM products WHERE store_id = 10', '01'), 'unscoped:products');
  t.is(await classify("SELECT * FROM notes WHERE team = '1'", '01'), 'unscoped:notes');
  // tables whose tenant columns read values differently: values must be the tenant as written
  const mixed = "SELECT * FROM products p, notes n WHERE p.store_id = 1 AND n.team = '1'";
  t.is(await classify(mixed, '1'), 'scoped');
  t.is(await classify(mixed, '01'), 'unscoped:products');
});

// Live: the auditor on the Query#run path of a real connection.
const live = anyTest as TestFn<Fixture>;
live.before(async (t) => {
  t.context = await createFixture({ audit: 'throw' });
});
live.after.always(async (t) => t.context?.close());

live.serial(
  'throw mode: a raw unscoped statement under a tenant fails before it runs; scoped raw SQL and withoutTenant pass',
  async (t) => {
    const { sequelize, Product } = t.context;
    const err = await t.throwsAsync(() => withTenant(1, () => sequelize.query('DELETE FROM purchases WHERE id = 2')), {
      instanceOf: UnscopedQueryError,
    });
    t.is(err?.table, 'purchases');
    t.is(err?.model, 'Purchase');
    t.deepEqual(err?.tenant, 1);
    t.regex(err?.message ?? '', /purchases is not constrained to the current tenant/);
    t.is((await t.context.rows('purchases')).length, 3, 'nothing deleted');
    const [rows] = await withTenant(1, () => sequelize.query('SELECT count(*)::int AS n FROM products WHERE store_id = $1', { bind: [1] }));
    t.deepEqual(rows, [{ n: 2 }]);
    t.is(await withoutTenant(async () => (await sequelize.query('SELECT count(*)::int AS n FROM products'))[0].length), 1);
    t.is(await withTenant(1, () => Product.count({ hooks: false } as object)), 2);
  },
);

// Runs a fan-out query on purpose: on Citus, routerOnly refuses it first.
pgOnly(live)('warn mode: reported through notice, and run', async (t) => {
  const { sequelize } = t.context;
  const notices: string[] = [];
  multitenant(sequelize, { ...t.context.options, audit: 'warn', notice: (m) => notices.push(m) });
  try {
    const [rows] = await withTenant(2, () => sequelize.query('SELECT count(*)::int AS n FROM products'));
    t.deepEqual(rows, [{ n: 5 }]);
    t.is(notices.length, 1);
    t.regex(notices[0] as string, /^audit: .*products is not constrained to the current tenant/);
    await withTenant(2, () => sequelize.query('SELEC oops')).catch(() => undefined);
    t.regex(notices[1] ?? '', /the auditor's PostgreSQL 17 parser could not read it .* so it cannot be checked/);
  } finally {
    multitenant(sequelize, t.context.options);
  }
});
