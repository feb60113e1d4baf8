// What an adversarial review of the auditor found (#26: given only the packed package and
// docs/auditor.md + docs/rls.md, an hour to reach another tenant's rows past audit: 'throw'). Each
// statement below ran and reached tenant 2 before its fix; each is now refused.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { analysisOf } from '../src/audit/auditor';
import { firstUnconstrained } from '../src/audit/evaluate';
import { multitenant, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { normalizeTenant } from '../src/tenant';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

const test = anyTest as TestFn<{ db: TestDatabase; s: Sequelize }>;
const pgOnly = onCitus ? test.skip : test.serial;

const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
const models = (s: Sequelize, schema?: string) => {
  s.define('Store', { id: key() }, { tableName: 'stores', tenantKey: 'id', timestamps: false, schema });
  s.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.STRING },
    { tableName: 'products', tenantKey: 'store_id', timestamps: false, schema },
  );
  s.define(
    'Purchase',
    { id: key(), store_id: key(), product_id: DataTypes.BIGINT },
    { tableName: 'purchases', tenantKey: 'store_id', timestamps: false, schema },
  );
  s.define('Category', { id: key(), name: DataTypes.STRING }, { tableName: 'categories', timestamps: false, schema });
};
const offline = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
multitenant(offline, { notice: false });
models(offline);
const offlinePublic = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
multitenant(offlinePublic, { notice: false });
models(offlinePublic, 'public');

async function refused(s: Sequelize, sql: string): Promise<string | undefined> {
  const a = await analysisOf(s, sql);
  if (a.kind === 'graph') return firstUnconstrained(a.graph, normalizeTenant(1, {}), undefined) ? 'unscoped' : undefined;
  if (a.kind === 'pass') return undefined;
  return a.kind;
}

const LATERAL = `LATERAL (SELECT store_id FROM (VALUES (2::bigint)) v(store_id)) x`;
const FINDINGS: Array<[string, string]> = [
  [
    'an unqualified column in a LATERAL sub-select over VALUES is its own, not the outer table’s',
    `SELECT p2.* FROM products p1, ${LATERAL}, products p2 WHERE p1.store_id = 1 AND p1.id = 1 AND p2.store_id = x.store_id`,
  ],
  [
    'the same over a function',
    `SELECT p2.* FROM products p1, LATERAL (SELECT store_id FROM generate_series(1, 2) AS store_id) x, products p2 WHERE p1.store_id = 1 AND p1.id = 1 AND p2.store_id = x.store_id`,
  ],
  [
    'the same over a derived table whose column carries no tenant',
    `SELECT p2.* FROM products p1, LATERAL (SELECT store_id FROM (SELECT 2 AS store_id) s) x, products p2 WHERE p1.store_id = 1 AND p2.store_id = x.store_id`,
  ],
  [
    'an UPDATE through it',
    `UPDATE products p2 SET name = 'PWNED' FROM (SELECT x.store_id FROM products p1, ${LATERAL} WHERE p1.store_id = 1 AND p1.id = 1) y WHERE p2.store_id = y.store_id AND p2.id = 1`,
  ],
  [
    'an INSERT through it',
    `INSERT INTO products (store_id, id, name) SELECT x.store_id, 99, 'planted' FROM products p1, ${LATERAL} WHERE p1.store_id = 1 AND p1.id = 1`,
  ],
  ['SET of the library’s own bypass setting', `SET sequelize_multitenant.bypass = 'on'`],
  ['SET LOCAL of the tenant setting', `SET LOCAL sequelize_multitenant.tenant = '{2}'`],
  ['SET ROLE', 'SET ROLE postgres'],
  ['SET SESSION AUTHORIZATION', 'SET SESSION AUTHORIZATION postgres'],
  ['SET row_security', 'SET row_security = off'],
  ['renaming the schema that holds the tenant tables', 'ALTER SCHEMA public RENAME TO pub_x'],
  ['a temporary table named like a tenant table', 'CREATE TABLE pg_temp.products (id bigint, store_id bigint, name text)'],
  ['a table named like a tenant table in another schema', 'CREATE TABLE app.products (id bigint, store_id bigint, name text)'],
  ['a view named like a tenant table', 'CREATE TEMP VIEW products AS SELECT 1 AS id'],
  ['a table renamed to a tenant table’s name', 'ALTER TABLE pg_temp.x RENAME TO products'],
  [
    'a MATERIALIZED CTE computing over every row before the filter outside',
    `WITH x AS MATERIALIZED (SELECT store_id, lo_from_bytea(0, convert_to(name, 'UTF8')) AS o FROM products) SELECT * FROM x WHERE store_id = 1`,
  ],
  [
    'a CTE whose target list computes over every row',
    `WITH x AS (SELECT store_id, 1 / (CASE WHEN name = 'SECRET2' THEN 0 ELSE 1 END) AS z FROM products) SELECT * FROM x WHERE store_id = 1`,
  ],
  [
    'a derived table whose WHERE computes over every row',
    `SELECT * FROM (SELECT * FROM products WHERE 1 / (CASE WHEN name = 'SECRET2' THEN 0 ELSE 1 END) = 1) p WHERE p.store_id = 1`,
  ],
  ['pg_stats', `SELECT histogram_bounds FROM pg_stats WHERE tablename = 'products'`],
  ['pg_statistic', `SELECT stavalues1 FROM pg_catalog.pg_statistic`],
  ['pg_stats_ext', `SELECT * FROM pg_stats_ext`],
  [
    'MERGE ... WHEN NOT MATCHED BY SOURCE (PostgreSQL 17): the target rows the ON does not match',
    `MERGE INTO products t USING (SELECT 1 AS id) s ON t.store_id = 1 AND t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE`,
  ],
];

for (const [name, sql] of FINDINGS) {
  test(`refused: ${name}`, async (t) => {
    t.truthy(await refused(offline, sql), sql);
  });
}

test('still allowed: a LATERAL over a constrained tenant table, a plain derived table filtered outside, NOT MATCHED BY SOURCE with its own constraint', async (t) => {
  for (const sql of [
    `SELECT p2.* FROM products p1, LATERAL (SELECT store_id FROM purchases u WHERE u.store_id = 1) x, products p2 WHERE p1.store_id = 1 AND p2.store_id = x.store_id`,
    `SELECT * FROM (SELECT * FROM products) p WHERE p.store_id = 1`,
    `WITH x AS (SELECT id, store_id FROM products) SELECT * FROM x WHERE store_id = 1`,
    `MERGE INTO products t USING (SELECT 1 AS id) s ON t.store_id = 1 AND t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.store_id = 1 THEN DELETE`,
    `SET statement_timeout = 1000`,
    `CREATE TEMP TABLE scratch (id int)`,
  ])
    t.is(await refused(offline, sql), undefined, sql);
});

test('a model declared with schema public is found under its bare name too', async (t) => {
  t.is(await refused(offlinePublic, 'SELECT name, store_id FROM products'), 'unscoped');
  t.is(await refused(offlinePublic, 'SELECT name FROM products WHERE store_id = 1'), undefined);
  t.is(await refused(offlinePublic, 'SELECT name FROM public.products'), 'unscoped');
});

// live
test.before(async (t) => {
  const db = await createTestDatabase();
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  models(s);
  multitenant(s, { notice: false });
  await s.sync();
  await s.query(`INSERT INTO stores VALUES (1), (2);
    INSERT INTO products VALUES (1, 1, 'a-1'), (1, 2, 'SECRET2'), (2, 2, 'b-2')`);
  t.context = { db, s };
});
test.after.always(async (t) => {
  await t.context?.s?.close();
  await t.context?.db?.drop();
});

pgOnly('a DECLARE that fails does not rebind the cursor: tenant 1 cannot read tenant 2’s cursor by re-declaring its name', async (t) => {
  const { s } = t.context;
  multitenant(s, { notice: false, audit: 'throw' });
  const q = (sql: string) => s.query(sql, { type: QueryTypes.SELECT });
  try {
    await withTenant(2, () => q('DECLARE c CURSOR WITH HOLD FOR SELECT name FROM products WHERE store_id = 2 ORDER BY id'));
    await t.throwsAsync(() => withTenant(1, () => q('DECLARE c CURSOR WITH HOLD FOR SELECT name FROM products WHERE store_id = 1')), {
      message: /cursor "c" already exists/,
    });
    const err = await t.throwsAsync(() => withTenant(1, () => q('FETCH ALL FROM c')), { instanceOf: UnscopedQueryError });
    t.regex(err?.message ?? '', /cursor c was declared under another tenant/);
    t.deepEqual(await withTenant(2, () => q('FETCH ALL FROM c')), [{ name: 'SECRET2' }, { name: 'b-2' }]);
    await withTenant(2, () => q('CLOSE c'));
  } finally {
    multitenant(s, { notice: false, audit: 'off' });
  }
});

pgOnly('strict mode, no tenant: a function whose body cannot be read is refused outside withoutTenant', async (t) => {
  const { s } = t.context;
  multitenant(s, { notice: false, audit: 'throw', strict: true });
  try {
    for (const sql of [
      `CREATE FUNCTION leak_b() RETURNS SETOF text LANGUAGE sql AS $$ SELECT name || ':' || store_id FROM U&"prod\\0075cts" $$`,
      `CREATE FUNCTION leak_c() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT name FROM ' || 'prod' || 'ucts'; END $$`,
    ])
      await t.throwsAsync(() => s.query(sql), { instanceOf: UnscopedQueryError }, sql);
    // a function that names no tenant table, in SQL the parser reads: runs
    await s.query(`CREATE FUNCTION just_one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$`);
    await withoutTenant(() => s.query('DROP FUNCTION just_one()'));
  } finally {
    multitenant(s, { notice: false, audit: 'off', strict: false });
  }
});
