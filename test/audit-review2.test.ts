// What the second adversarial review of the auditor found (#26: given only the packed package and
// README + docs/auditor.md + docs/rls.md). Each statement below passed `audit: 'throw'` under tenant 1
// (or with no tenant in strict mode) and reached other tenants' rows, settings or schema before its fix;
// the live test runs the leaking shapes on PostgreSQL with the auditor off to show they really reach
// tenant 2, and refused with it on.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { analysisOf, readingOf } from '../src/audit/auditor';
import { firstUnconstrained } from '../src/audit/evaluate';
import { multitenant, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { normalizeTenant } from '../src/tenant';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

const test = anyTest as TestFn<{ db: TestDatabase; s: Sequelize }>;
// The auditor reads statements, whatever the database; this file's schema (keys from tenant tables to
// plain global tables, ON UPDATE CASCADE) is one Citus refuses: on Citus every test is reported skipped.
const anyDb = onCitus ? test.skip : test;
const pgOnly = onCitus ? test.skip : test.serial;

const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
const models = (s: Sequelize) => {
  s.define('Store', { id: key(), name: DataTypes.STRING }, { tableName: 'stores', tenantKey: 'id', timestamps: false });
  const Category = s.define('Category', { id: key(), name: DataTypes.STRING }, { tableName: 'categories', timestamps: false });
  const Product = s.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.STRING, category_id: DataTypes.BIGINT },
    { tableName: 'products', tenantKey: 'store_id', timestamps: false },
  );
  // Sequelize's default for a belongsTo: ON DELETE SET NULL, ON UPDATE CASCADE — run by the database
  // over every tenant's products when a category's key changes or it goes
  Product.belongsTo(Category, { foreignKey: 'category_id', onDelete: 'SET NULL' });
  s.define(
    'Purchase',
    { id: key(), store_id: key(), product_id: DataTypes.BIGINT },
    { tableName: 'purchases', tenantKey: 'store_id', timestamps: false },
  );
  // a global table nothing references
  s.define('Country', { id: key(), name: DataTypes.STRING }, { tableName: 'countries', timestamps: false });
  // (third review) a global table whose deletion cascades into categories, whose deletion reaches products
  const Group = s.define('Group', { id: key(), name: DataTypes.STRING }, { tableName: 'groups', timestamps: false });
  Category.belongsTo(Group, { foreignKey: 'group_id', onDelete: 'CASCADE' });
};
const offline = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
multitenant(offline, { notice: false });
models(offline);

/** The auditor's decision for `sql` under `tenant` (undefined: none, as in strict mode): undefined when it passes. */
async function refused(sql: string, tenant: number | null): Promise<string | undefined> {
  const a = await analysisOf(offline, sql);
  if (a.kind === 'graph') {
    const t = tenant === null ? undefined : normalizeTenant(tenant, {});
    return firstUnconstrained(a.graph, t, undefined, undefined, readingOf(offline, a.graph)) ? 'unscoped' : undefined;
  }
  if (a.kind === 'pass') return undefined;
  if (a.kind === 'schema' && tenant === null && !a.definesOverTenant) return undefined;
  return a.kind;
}

const SEQUELIZE_FIND_OR_CREATE = (
  insert: string,
  body = ` BEGIN ${insert} RETURNING * INTO response; EXCEPTION WHEN unique_violation THEN GET STACKED DIAGNOSTICS sequelize_caught_exception = PG_EXCEPTION_DETAIL; END `,
) =>
  `CREATE OR REPLACE FUNCTION pg_temp.testfunc(OUT response "products", OUT sequelize_caught_exception text) RETURNS RECORD AS $func_0123$${body}$func_0123$ LANGUAGE plpgsql; SELECT (testfunc.response).*, testfunc.sequelize_caught_exception FROM pg_temp.testfunc(); DROP FUNCTION IF EXISTS pg_temp.testfunc()`;

/** [finding, statement, tenant (default 1; null: none, strict mode)]. */
const FINDINGS: Array<[string, string, (number | null)?]> = [
  // 1: references to one CTE
  [
    'two references to one CTE: the constraint on one does not constrain the other',
    'WITH c AS (SELECT * FROM products) SELECT c2.store_id, c2.name FROM c c1, c c2 WHERE c1.store_id = 1',
  ],
  [
    '… an UPDATE through the unconstrained reference',
    "WITH c AS (SELECT * FROM products) UPDATE products o SET name = 'x' FROM c c1, c c2 WHERE c1.store_id = 1 AND o.store_id = c2.store_id",
  ],
  [
    '… a sub-select reading the CTE again',
    'WITH c AS (SELECT * FROM products) SELECT (SELECT json_agg(c) FROM c) FROM c WHERE c.store_id = 1',
  ],
  ['a MATERIALIZED CTE filtered outside', 'WITH c AS MATERIALIZED (SELECT * FROM products) SELECT * FROM c WHERE c.store_id = 1'],
  // 2: LATERAL on a JOIN's right side binds to the left side
  [
    'a LATERAL on a JOIN’s right side binds o to the join’s left side, not an outer o',
    'SELECT (SELECT json_agg(o.name) FROM products o JOIN LATERAL (SELECT o.store_id AS sid) y ON o.store_id = y.sid) AS leaked FROM products o WHERE o.store_id = 1',
  ],
  [
    '… picking the victim tenant',
    'SELECT z.* FROM products o, LATERAL (SELECT y.* FROM (SELECT 2::bigint AS store_id) o JOIN LATERAL (SELECT q.store_id, q.name FROM products q WHERE q.store_id = o.store_id) y ON true) z WHERE o.store_id = 1',
  ],
  [
    '… an UPDATE through it',
    "UPDATE products d SET name = 'x' FROM products o, LATERAL (SELECT y.sid FROM products o JOIN LATERAL (SELECT o.store_id AS sid) y ON o.store_id = y.sid) z WHERE o.store_id = 1 AND d.store_id = z.sid",
  ],
  // 3: a function in FROM without an alias
  [
    'an unaliased function in FROM has columns of its own: an unqualified column binds to it',
    `SELECT q.store_id, q.name FROM products p, LATERAL (SELECT store_id FROM json_populate_record(null::products, '{"store_id":2}')) x, products q WHERE p.store_id = 1 AND q.store_id = x.store_id`,
  ],
  [
    '… an INSERT of another tenant’s row through it',
    `INSERT INTO purchases (store_id, id, product_id) SELECT x.store_id, 50, 1 FROM products p, LATERAL (SELECT store_id FROM json_populate_record(null::products, '{"store_id":2}')) x WHERE p.store_id = 1 AND p.id = 1`,
  ],
  // 4: Sequelize's findOrCreate function, imitated
  [
    'a pg_temp function with findOrCreate’s INSERT in a body that does more',
    `CREATE OR REPLACE FUNCTION pg_temp.leak(OUT response products, OUT sequelize_caught_exception text) RETURNS RECORD AS $f$ BEGIN IF false THEN BEGIN INSERT INTO products (store_id, id) VALUES (1, 9) RETURNING * INTO response; END; END IF; PERFORM set_config('sequelize_multitenant.bypass', 'on', true); SELECT string_agg(store_id || ':' || name, ', ') INTO sequelize_caught_exception FROM products; END $f$ LANGUAGE plpgsql`,
  ],
  [
    '… the same with no tenant (strict mode), an INSERT into the tenant table',
    `CREATE OR REPLACE FUNCTION pg_temp.leak(OUT response stores, OUT sequelize_caught_exception text) RETURNS RECORD AS $f$ BEGIN IF false THEN BEGIN INSERT INTO stores (id) VALUES (9) RETURNING * INTO response; END; END IF; SELECT string_agg(name, ',') INTO sequelize_caught_exception FROM products; END $f$ LANGUAGE plpgsql`,
    null,
  ],
  [
    'findOrCreate’s exact text with a second statement smuggled into the INSERT',
    SEQUELIZE_FIND_OR_CREATE('INSERT INTO "products" ("id","store_id") VALUES (9,1); UPDATE products SET name = \'x\''),
  ],
  [
    'findOrCreate’s text under another name',
    SEQUELIZE_FIND_OR_CREATE('INSERT INTO "products" ("id","store_id") VALUES (9,1)').replaceAll('testfunc', 'other'),
  ],
  [
    'findOrCreate’s text with SECURITY DEFINER',
    SEQUELIZE_FIND_OR_CREATE('INSERT INTO "products" ("id","store_id") VALUES (9,1)').replace(
      'LANGUAGE plpgsql',
      'LANGUAGE plpgsql SECURITY DEFINER',
    ),
  ],
  // 5: settings through pg_settings
  ['UPDATE pg_settings (standard_conforming_strings)', "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"],
  ['UPDATE pg_catalog.pg_settings (search_path)', "UPDATE pg_catalog.pg_settings SET setting = 'x' WHERE name = 'search_path'"],
  // 7: schema changes reached through other names
  ['DROP SCHEMA public CASCADE', 'DROP SCHEMA public CASCADE'],
  ['DROP SCHEMA of another schema', 'DROP SCHEMA other'],
  ['any DROP ... CASCADE (a type, a function: what depends on it goes too)', 'DROP TYPE mood CASCADE'],
  ['TRUNCATE of a global table ... CASCADE', 'TRUNCATE categories CASCADE'],
  ['DROP TRIGGER on a tenant table', 'DROP TRIGGER sequelize_multitenant_no_truncate ON products'],
  ['DROP POLICY on a tenant table', 'DROP POLICY sequelize_multitenant_isolation ON public.products'],
  ['DROP RULE on a tenant table', 'DROP RULE r ON products'],
  ['GRANT ON ALL TABLES IN SCHEMA', 'GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO PUBLIC'],
  ['REVOKE ON ALL TABLES IN SCHEMA', 'REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM PUBLIC'],
  // 8: other sessions' statements
  ['pg_stat_activity', 'SELECT query FROM pg_stat_activity WHERE datname = current_database()'],
  ['pg_catalog.pg_stat_activity', 'SELECT query FROM pg_catalog.pg_stat_activity'],
  ['pg_stat_get_activity()', 'SELECT * FROM pg_stat_get_activity(NULL)'],
  ['pg_stat_statements', 'SELECT query FROM pg_stat_statements'],
  // 9, 16: the planner's view of every tenant's rows
  [
    'EXPLAIN over a tenant table (estimates from every tenant’s statistics)',
    'EXPLAIN SELECT * FROM products WHERE store_id = 1 AND name = $x$a$x$',
  ],
  ['EXPLAIN ANALYZE over a tenant table (rows removed by filter)', 'EXPLAIN ANALYZE SELECT * FROM products WHERE store_id = 1'],
  // 10: strict mode, no tenant: an upsert on the tenant table itself
  [
    'no tenant: INSERT ... ON CONFLICT DO UPDATE on the tenant table',
    "INSERT INTO stores (id, name) VALUES (2, 'x') ON CONFLICT (id) DO UPDATE SET name = 'hijacked: ' || stores.name RETURNING *",
    null,
  ],
  // 11: files
  ['pg_read_binary_file', "SELECT encode(pg_read_binary_file(pg_relation_filepath('products')), 'escape')"],
  ['pg_read_file', "SELECT pg_read_file('base/1/2')"],
  ['lo_import', "SELECT lo_import('/etc/passwd')"],
  ['lo_export', "SELECT lo_export(1, '/tmp/x')"],
  ['pg_ls_dir', "SELECT pg_ls_dir('.')"],
  // 15: foreign-key actions from a global table
  ['UPDATE of a global table’s key that tenant rows reference ON UPDATE CASCADE', 'UPDATE categories SET id = 666 WHERE id = 1'],
  ['DELETE from a global table that tenant rows reference ON DELETE SET NULL', 'DELETE FROM categories WHERE id = 1'],
  ['MERGE into it that deletes', 'MERGE INTO categories c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN DELETE'],
  // 17: other sessions
  ['pg_terminate_backend', 'SELECT pg_terminate_backend(123)'],
  ['pg_cancel_backend', 'SELECT pg_cancel_backend(123)'],
  // literals PostgreSQL 16+ reads one way and 13–15 another ('1_0' is 1 AS _0 there)
  ['a numeric literal with underscores', 'INSERT INTO purchases (store_id, id, product_id) SELECT 1_0, 5, 1'],
  ['a hexadecimal literal', 'SELECT * FROM products WHERE store_id = 0x1'],
  ['an octal literal', 'SELECT * FROM products WHERE store_id = 0o1'],
  ['a binary literal', 'SELECT * FROM products WHERE store_id = 0b1'],
  // the third review
  ['SET client_encoding (the server would decode later statements another way)', "SET client_encoding TO 'SJIS'"],
  ['SET NAMES', "SET NAMES 'SJIS'"],
  ['RESET client_encoding', 'RESET client_encoding'],
  [
    'no tenant (strict): a function whose body runs SQL given as text',
    `CREATE FUNCTION pg_temp.f() RETURNS xml LANGUAGE sql AS $$ SELECT query_to_xml('select store_id from pro' || 'ducts', true, true, '') $$`,
    null,
  ],
  [
    'no tenant (strict): a view over SQL given as text',
    `CREATE TEMP VIEW v AS SELECT query_to_xml('select store_id from pro' || 'ducts', true, true, '') AS x`,
    null,
  ],
  ['no tenant (strict): a temporary table named like a tenant table', 'CREATE TEMP TABLE products (LIKE public.products)', null],
  ['no tenant (strict): a table renamed to a tenant table’s name', 'ALTER TABLE pg_temp.loot RENAME TO products', null],
  ['no tenant (strict): SELECT ... INTO a tenant table’s name', 'SELECT 1 AS id INTO TEMP products', null],
  ['no tenant (strict): CREATE TABLE ... AS a tenant table’s name', 'CREATE TEMP TABLE products AS SELECT 1 AS id', null],
  ['a DELETE of a global table whose cascade reaches tenant rows through another global table', 'DELETE FROM groups WHERE id = 1'],
];

for (const [name, sql, tenant] of FINDINGS) {
  anyDb(`refused: ${name}`, async (t) => {
    t.truthy(await refused(sql, tenant === null ? null : (tenant ?? (/1_0/.test(sql) ? 10 : 1))), sql);
  });
}

anyDb('still allowed: what the fixes must not refuse', async (t) => {
  for (const [sql, tenant] of [
    ['WITH c AS (SELECT * FROM products) SELECT * FROM c WHERE c.store_id = 1', 1],
    ['WITH c AS (SELECT * FROM products WHERE store_id = 1) SELECT * FROM c c1, c c2 WHERE c1.id = c2.id', 1],
    ['SELECT * FROM products o JOIN LATERAL (SELECT o.store_id AS sid) y ON true WHERE o.store_id = 1', 1],
    ['SELECT * FROM products p JOIN purchases u ON u.store_id = p.store_id AND u.product_id = p.id WHERE p.store_id = 1', 1],
    ["SELECT x.a FROM products p, LATERAL (SELECT a FROM json_populate_record(null::categories, '{}') AS r(a)) x WHERE p.store_id = 1", 1],
    [SEQUELIZE_FIND_OR_CREATE('INSERT INTO "products" ("id","store_id","name") VALUES (9,1,\'x\')'), 1],
    ['UPDATE categories SET name = $$x$$ WHERE id = 1', 1],
    ['UPDATE countries SET id = 5 WHERE id = 1', 1],
    ['DELETE FROM countries WHERE id = 1', 1],
    ["INSERT INTO stores (id, name) VALUES (3, 'new')", null],
    ["INSERT INTO stores (id, name) VALUES (3, 'new') ON CONFLICT (id) DO NOTHING", null],
    ['SELECT 1000000, 1.5, 1e3, -7', 1],
    ["SELECT * FROM products WHERE store_id = 1 AND name = '1_0 0x1'", 1],
    ['DROP TABLE scratch', 1],
    ['GRANT SELECT ON countries TO PUBLIC', 1],
    ['SELECT count(*) FROM pg_stat_user_tables', 1],
    ['EXPLAIN SELECT * FROM countries', 1],
    ["UPDATE groups SET name = 'x' WHERE id = 1", 1],
    ['CREATE TEMP TABLE scratch (id int)', null],
    ['CREATE FUNCTION pg_temp.g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', null],
  ] as Array<[string, number | null]>)
    t.is(await refused(sql, tenant), undefined, sql);
});

// live: the shapes reach tenant 2 with the auditor off, and are refused with it on
test.before(async (t) => {
  if (onCitus) return;
  const db = await createTestDatabase();
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  models(s);
  multitenant(s, { notice: false, audit: 'off' });
  await s.sync();
  await s.query(`INSERT INTO stores VALUES (1, 'one'), (2, 'two');
    INSERT INTO categories VALUES (1, 'c');
    INSERT INTO products VALUES (1, 1, 'a-1', 1), (1, 2, 'SECRET2', 1), (2, 2, 'b-2', 1)`);
  t.context = { db, s };
});
test.after.always(async (t) => {
  await t.context?.s?.close();
  await t.context?.db?.drop();
});

pgOnly('live: the leaking reads return tenant 2’s rows with the auditor off, and are refused with it on', async (t) => {
  const { s } = t.context;
  const reads = [
    'WITH c AS (SELECT * FROM products) SELECT c2.name FROM c c1, c c2 WHERE c1.store_id = 1 ORDER BY 1',
    'SELECT (SELECT json_agg(o.name ORDER BY o.name) FROM products o JOIN LATERAL (SELECT o.store_id AS sid) y ON o.store_id = y.sid) AS name FROM products o WHERE o.store_id = 1 AND o.id = 1',
    `SELECT q.name FROM products p, LATERAL (SELECT store_id FROM json_populate_record(null::products, '{"store_id":2}')) x, products q WHERE p.store_id = 1 AND p.id = 1 AND q.store_id = x.store_id`,
  ];
  const q = (sql: string) => withTenant(1, () => s.query(sql, { type: QueryTypes.SELECT }));
  for (const sql of reads) t.regex(JSON.stringify(await q(sql)), /SECRET2|b-2/, `reaches tenant 2 with the auditor off: ${sql}`);
  multitenant(s, { notice: false, audit: 'throw' });
  try {
    for (const sql of reads) await t.throwsAsync(() => q(sql), { instanceOf: UnscopedQueryError }, sql);
    // the writes: refused, and nothing changed
    await t.throwsAsync(() => q('UPDATE categories SET id = 666 WHERE id = 1'), { instanceOf: UnscopedQueryError });
    await t.throwsAsync(() => q("UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"), {
      instanceOf: UnscopedQueryError,
    });
    const after = await withoutTenant(() =>
      s.query('SELECT store_id::int AS s, id::int AS id, name, category_id::int AS c FROM products ORDER BY 1, 2', {
        type: QueryTypes.SELECT,
      }),
    );
    t.deepEqual(after, [
      { s: 1, id: 1, name: 'a-1', c: 1 },
      { s: 2, id: 1, name: 'SECRET2', c: 1 },
      { s: 2, id: 2, name: 'b-2', c: 1 },
    ]);
    t.deepEqual(await s.query('SHOW standard_conforming_strings', { type: QueryTypes.SELECT }), [{ standard_conforming_strings: 'on' }]);
    // Sequelize's own findOrCreate still passes (its function is recognised by its exact text)
    const Product = s.model('Product');
    const [row, created] = await withTenant(1, () => Product.findOrCreate({ where: { id: 7 }, defaults: { name: 'made' } }));
    t.deepEqual([row.get('store_id'), row.get('id'), created], ['1', '7', true]);
  } finally {
    multitenant(s, { notice: false, audit: 'off' });
  }
});
