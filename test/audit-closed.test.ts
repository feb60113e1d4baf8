// The auditor closed by construction (#26): every FROM-item kind analyzed or refused, sub-selects in every
// expression kind that holds one, every statement kind of the grammar classified (SQL that defines later
// SQL refused under a tenant, and in strict mode outside withoutTenant when it names a tenant table), a
// node kind the walker does not read refused wherever it is, and cursors bound to the tenant that
// declared them. The grammar-wide enumeration is in audit-kinds.test.ts.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { analysisOf } from '../src/audit/auditor';
import { firstUnconstrained } from '../src/audit/evaluate';
import { multitenant, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { normalizeTenant } from '../src/tenant';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

const test = anyTest as TestFn<{ db: TestDatabase; s: Sequelize }>;
const pgOnly = onCitus ? test.skip : test.serial;

const offline = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
multitenant(offline, { notice: false });
const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
const models = (s: Sequelize) => {
  s.define('Store', { id: key(), name: DataTypes.STRING }, { tableName: 'stores', tenantKey: 'id', timestamps: false });
  s.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.STRING, price: DataTypes.INTEGER },
    { tableName: 'products', tenantKey: 'store_id', timestamps: false },
  );
  s.define(
    'Note',
    { id: key(), store_id: key(), text: DataTypes.STRING },
    { tableName: 'notes', tenantKey: 'store_id', timestamps: false },
  );
  s.define('Category', { id: key(), name: DataTypes.STRING }, { tableName: 'categories', timestamps: false });
};
models(offline);

type Verdict = 'scoped' | 'unscoped' | 'unknowable' | 'schema' | 'pass' | 'unparsed';
async function classify(sql: string): Promise<{ verdict: Verdict; reason?: string }> {
  const a = await analysisOf(offline, sql);
  if (a.kind === 'graph') return { verdict: firstUnconstrained(a.graph, normalizeTenant(1, {}), undefined) ? 'unscoped' : 'scoped' };
  if (a.kind === 'unparsed') return { verdict: 'unparsed', reason: a.message };
  return { verdict: a.kind, reason: 'reason' in a ? a.reason : undefined };
}
const refused = (v: Verdict) => v === 'unscoped' || v === 'unknowable' || v === 'schema';

// FROM-item kinds: each with the tenant table unconstrained (refused) and constrained (passes)
const FROM_ITEMS: Array<[string, string, string]> = [
  ['TABLESAMPLE', 'SELECT * FROM products TABLESAMPLE SYSTEM (100)', 'SELECT * FROM products TABLESAMPLE SYSTEM (100) WHERE store_id = 1'],
  [
    'TABLESAMPLE in a CTE',
    'WITH c AS (SELECT * FROM products TABLESAMPLE SYSTEM (100)) SELECT * FROM c',
    'WITH c AS (SELECT * FROM products TABLESAMPLE BERNOULLI (100) REPEATABLE (1) WHERE store_id = 1) SELECT * FROM c',
  ],
  [
    'TABLESAMPLE with an aliased join',
    'SELECT p.* FROM products p TABLESAMPLE SYSTEM (100) JOIN notes n ON n.store_id = 1',
    'SELECT p.* FROM products p TABLESAMPLE SYSTEM (100) JOIN notes n ON n.store_id = p.store_id WHERE p.store_id = 1',
  ],
  [
    'TABLESAMPLE with a sub-select in its argument',
    'SELECT * FROM categories TABLESAMPLE SYSTEM ((SELECT count(*) FROM products))',
    'SELECT * FROM categories TABLESAMPLE SYSTEM ((SELECT count(*) FROM products WHERE store_id = 1))',
  ],
  ['ONLY', 'SELECT * FROM ONLY products', 'SELECT * FROM ONLY products WHERE store_id = 1'],
  ['inheritance *', 'SELECT * FROM products * AS p', 'SELECT * FROM products * AS p WHERE p.store_id = 1'],
  ['sub-select', 'SELECT * FROM (SELECT * FROM products) p', 'SELECT * FROM (SELECT * FROM products) p WHERE p.store_id = 1'],
  [
    'LATERAL',
    'SELECT * FROM categories c, LATERAL (SELECT * FROM products p WHERE p.id = c.id) l',
    'SELECT * FROM categories c, LATERAL (SELECT * FROM products p WHERE p.id = c.id AND p.store_id = 1) l',
  ],
  [
    'function',
    'SELECT * FROM unnest(ARRAY(SELECT id FROM products)) x',
    'SELECT * FROM unnest(ARRAY(SELECT id FROM products WHERE store_id = 1)) x',
  ],
  [
    'ROWS FROM',
    'SELECT * FROM ROWS FROM (unnest(ARRAY(SELECT id FROM products)), generate_series(1, 2)) AS r(a, b)',
    'SELECT * FROM ROWS FROM (unnest(ARRAY(SELECT id FROM products WHERE store_id = 1)), generate_series(1, 2)) AS r(a, b)',
  ],
  [
    'JSON_TABLE',
    `SELECT * FROM JSON_TABLE((SELECT json_agg(name) FROM products), '$[*]' COLUMNS (x text PATH '$')) j`,
    `SELECT * FROM JSON_TABLE((SELECT json_agg(name) FROM products WHERE store_id = 1), '$[*]' COLUMNS (x text PATH '$')) j`,
  ],
  [
    'XMLTABLE',
    `SELECT * FROM XMLTABLE('/r/n' PASSING (SELECT xmlelement(name r, xmlagg(xmlelement(name n, name))) FROM products) COLUMNS x text PATH '.') t`,
    `SELECT * FROM XMLTABLE('/r/n' PASSING (SELECT xmlelement(name r, xmlagg(xmlelement(name n, name))) FROM products WHERE store_id = 1) COLUMNS x text PATH '.') t`,
  ],
  [
    'VALUES',
    'SELECT * FROM (VALUES ((SELECT count(*) FROM products))) v(n)',
    'SELECT * FROM (VALUES ((SELECT count(*) FROM products WHERE store_id = 1))) v(n)',
  ],
  [
    'CROSS JOIN',
    'SELECT * FROM categories CROSS JOIN products',
    'SELECT * FROM categories CROSS JOIN products WHERE products.store_id = 1',
  ],
  [
    'NATURAL JOIN',
    'SELECT * FROM products NATURAL JOIN notes',
    'SELECT * FROM products NATURAL JOIN notes WHERE products.store_id = 1 AND notes.store_id = 1',
  ],
  [
    'LEFT JOIN',
    'SELECT * FROM categories c LEFT JOIN products p ON p.id = c.id',
    'SELECT * FROM categories c LEFT JOIN products p ON p.id = c.id AND p.store_id = 1',
  ],
  [
    'RIGHT JOIN',
    'SELECT * FROM products p RIGHT JOIN categories c ON p.id = c.id',
    'SELECT * FROM products p RIGHT JOIN categories c ON p.id = c.id AND p.store_id = 1',
  ],
  [
    'FULL JOIN',
    'SELECT * FROM products p FULL JOIN notes n ON p.id = n.id WHERE p.store_id = 1',
    'SELECT * FROM (SELECT * FROM products WHERE store_id = 1) p FULL JOIN (SELECT * FROM notes WHERE store_id = 1) n ON p.id = n.id',
  ],
  [
    'JOIN USING with an alias',
    'SELECT * FROM products p JOIN notes n USING (store_id) AS j WHERE j.store_id = 1',
    'SELECT * FROM products p JOIN notes n USING (store_id) AS j WHERE p.store_id = 1',
  ],
  // sub-selects outside SubLink
  [
    'JSON_ARRAY(SELECT ...)',
    'SELECT JSON_ARRAY(SELECT name FROM products)',
    'SELECT JSON_ARRAY(SELECT name FROM products WHERE store_id = 1)',
  ],
];

for (const [name, open, closed] of FROM_ITEMS) {
  test(`FROM item ${name}: refused unconstrained, passes constrained`, async (t) => {
    const a = await classify(open);
    t.true(refused(a.verdict), `${a.verdict}: ${open}`);
    t.is((await classify(closed)).verdict, 'scoped', closed);
  });
}

test('TABLESAMPLE copies refused: INSERT ... SELECT and UPDATE ... FROM over another tenant', async (t) => {
  for (const sql of [
    `INSERT INTO notes (id, store_id, text) SELECT 9, 1, name FROM products TABLESAMPLE SYSTEM (100) WHERE store_id = 2`,
    `UPDATE notes SET text = p.name FROM products p TABLESAMPLE SYSTEM (100) WHERE notes.store_id = 1 AND p.store_id = 3`,
    `DELETE FROM notes USING products p TABLESAMPLE SYSTEM (100) WHERE notes.store_id = 1 AND p.id = notes.id`,
    `MERGE INTO notes n USING products p TABLESAMPLE SYSTEM (100) ON n.store_id = 1 AND n.id = p.id WHEN MATCHED THEN UPDATE SET text = p.name`,
  ]) {
    const a = await classify(sql);
    t.true(refused(a.verdict), `${a.verdict}: ${sql}`);
  }
});

const STATEMENTS: Array<[string, Verdict, RegExp?]> = [
  ['CREATE POLICY p ON products USING (true)', 'schema', /CREATE POLICY/],
  ['ALTER POLICY sequelize_multitenant_isolation ON products USING (true)', 'schema', /ALTER POLICY/],
  ['ALTER TABLE products DISABLE ROW LEVEL SECURITY', 'schema'],
  ['ALTER TABLE products NO FORCE ROW LEVEL SECURITY', 'schema'],
  ['ALTER TABLE categories DISABLE ROW LEVEL SECURITY', 'schema'],
  ['ALTER TABLE products DISABLE TRIGGER ALL', 'schema'],
  ['CREATE SCHEMA s CREATE VIEW v AS SELECT * FROM products', 'schema'],
  ['CREATE SCHEMA s2', 'pass'],
  ['CREATE TABLE kids () INHERITS (products)', 'schema'],
  ['CREATE TABLE part PARTITION OF products FOR VALUES IN (1)', 'schema'],
  ['CREATE TABLE other (id int)', 'pass'],
  ["CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1')", 'schema'],
  ['CREATE PUBLICATION pub FOR TABLE products', 'schema'],
  ["SECURITY LABEL ON TABLE products IS 'x'", 'schema'],
  ['CREATE FUNCTION f() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM products $$', 'schema'],
  ['CREATE PROCEDURE pr() LANGUAGE sql BEGIN ATOMIC DELETE FROM products; END', 'schema'],
  ['CREATE ROLE intruder BYPASSRLS', 'schema'],
  ['ALTER ROLE current_user SET row_security = off', 'schema'],
  ['CREATE OPERATOR === (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = int8eq)', 'schema'],
  ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', 'schema'],
  ['CREATE EXTENSION postgres_fdw', 'schema'],
  ['GRANT SELECT ON products TO PUBLIC', 'schema'],
  ['REASSIGN OWNED BY current_user TO postgres', 'schema'],
  ["COMMENT ON TABLE products IS 'harmless'", 'pass'],
  ['VACUUM products', 'pass'],
  ['LOCK TABLE products IN SHARE MODE', 'pass'],
  ['LISTEN x', 'pass'],
  ['CALL some_procedure()', 'unknowable', /CALL/],
];
test('statement kinds: SQL that defines later SQL or changes isolation is refused under a tenant; COMMENT, VACUUM, LOCK pass', async (t) => {
  for (const [sql, verdict, reason] of STATEMENTS) {
    const a = await classify(sql);
    t.is(a.verdict, verdict, sql);
    if (reason) t.regex(a.reason ?? '', reason, sql);
  }
});

test('a node kind the walker does not read is refused, naming it, wherever it is', async (t) => {
  const { analyzeStatements } = await import('../src/audit/analyze');
  const tables = new Map([['.products', { column: 'store_id', isTenantTable: false }]]);
  const parse = () => [];
  const where = {
    A_Expr: {
      kind: 'AEXPR_OP',
      name: [{ String: { sval: '=' } }],
      lexpr: { ColumnRef: { fields: [{ String: { sval: 'store_id' } }] } },
      rexpr: { A_Const: { ival: { ival: 1 } } },
    },
  };
  const from = [{ RangeVar: { relname: 'products', inh: true } }];
  for (const [place, stmt] of [
    ['target list', { SelectStmt: { targetList: [{ ResTarget: { val: { Var: { varno: 1 } } } }], fromClause: from, whereClause: where } }],
    ['FROM', { SelectStmt: { targetList: [], fromClause: [{ RangeTblRef: { rtindex: 1 } }] } }],
    [
      'WHERE',
      {
        SelectStmt: {
          targetList: [],
          fromClause: from,
          whereClause: { BoolExpr: { boolop: 'AND_EXPR', args: [where, { FutureExpr: {} }] } },
        },
      },
    ],
    ['statement', { FutureStmt: {} }],
  ] as const) {
    const a = analyzeStatements([{ stmt }], tables, parse);
    t.is(a.kind, 'unknowable', place);
    t.regex(a.kind === 'unknowable' ? a.reason : '', /the auditor does not read (Var|RangeTblRef|FutureExpr|FutureStmt)/, place);
  }
});

// live: strict mode, cursors
test.before(async (t) => {
  const db = await createTestDatabase();
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  models(s);
  multitenant(s, { notice: false });
  await s.sync();
  await s.query(`INSERT INTO stores VALUES (1, 'one'), (2, 'two');
    INSERT INTO products VALUES (1, 1, 'a-1', 10), (2, 1, 'b-1', 20), (1, 2, 'a-2', 50), (3, 2, 'c-2', 1)`);
  t.context = { db, s };
});
test.after.always(async (t) => {
  await t.context?.s?.close();
  await t.context?.db?.drop();
});

pgOnly('strict mode, no tenant: SQL that defines later SQL over a tenant table is refused outside withoutTenant', async (t) => {
  const { s } = t.context;
  multitenant(s, { notice: false, audit: 'throw', strict: true });
  try {
    for (const sql of [
      'CREATE VIEW all_products AS SELECT * FROM products',
      'CREATE POLICY open_all ON products USING (true)',
      'ALTER TABLE products DISABLE ROW LEVEL SECURITY',
      'CREATE FUNCTION count_all() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT count(*) FROM "products"); END $$',
    ]) {
      const err = await t.throwsAsync(() => s.query(sql), { instanceOf: UnscopedQueryError }, sql);
      t.regex(err?.message ?? '', /outside a tenant \(withoutTenant\)|withoutTenant/, sql);
    }
    const [[view]] = (await s.query(`SELECT count(*)::int AS n FROM pg_views WHERE viewname = 'all_products'`)) as [
      Array<{ n: number }>,
      unknown,
    ];
    t.is(view?.n, 0, 'nothing was created');
    // not over a tenant table: runs; inside withoutTenant: runs
    await s.query('CREATE VIEW just_one AS SELECT 1 AS one');
    await withoutTenant(() => s.query('CREATE VIEW all_products AS SELECT * FROM products'));
    await withoutTenant(() => s.query('DROP VIEW all_products; DROP VIEW just_one'));
  } finally {
    multitenant(s, { notice: false, audit: 'off', strict: false });
  }
});

pgOnly(
  'cursors are bound to the tenant that declared them: FETCH, MOVE and WHERE CURRENT OF under another tenant are refused',
  async (t) => {
    const { s } = t.context;
    multitenant(s, { notice: false, audit: 'throw' });
    const q = (sql: string) => s.query(sql, { type: QueryTypes.SELECT });
    try {
      await withTenant(1, () => q('DECLARE c1 CURSOR WITH HOLD FOR SELECT id, name FROM products WHERE store_id = 1 ORDER BY id'));
      // another tenant
      for (const sql of ['FETCH 1 FROM c1', 'MOVE 1 IN c1', 'FETCH ALL c1']) {
        const err = await t.throwsAsync(() => withTenant(2, () => q(sql)), { instanceOf: UnscopedQueryError }, sql);
        t.regex(err?.message ?? '', /cursor c1 was declared under another tenant/, sql);
      }
      // the declaring tenant
      t.deepEqual(await withTenant(1, () => q('FETCH 1 FROM c1')), [{ id: '1', name: 'a-1' }]);
      // no tenant, strict: refused
      multitenant(s, { notice: false, audit: 'throw', strict: true });
      await t.throwsAsync(() => q('FETCH 1 FROM c1'), { instanceOf: UnscopedQueryError });
      multitenant(s, { notice: false, audit: 'throw', strict: false });
      await withTenant(1, () => q('CLOSE c1'));
      // declared outside a tenant (withoutTenant: every tenant's rows), read under a tenant: refused
      await withoutTenant(() => q('DECLARE c2 CURSOR WITH HOLD FOR SELECT id FROM products ORDER BY store_id, id'));
      const err = await t.throwsAsync(() => withTenant(1, () => q('FETCH 1 FROM c2')), { instanceOf: UnscopedQueryError });
      t.regex(err?.message ?? '', /cursor c2 was declared under another tenant|not declared under this tenant/);
      await withoutTenant(() => q('CLOSE c2'));
      // a cursor over a global table: any tenant reads it
      await withTenant(1, () => q('DECLARE c3 CURSOR WITH HOLD FOR SELECT 1 AS one'));
      t.deepEqual(await withTenant(2, () => q('FETCH 1 FROM c3')), [{ one: 1 }]);
      await withTenant(2, () => q('CLOSE c3'));
      // never declared here (a cursor made inside a function, or before the plugin): refused under a tenant
      await t.throwsAsync(() => withTenant(1, () => q('FETCH 1 FROM nowhere')), { instanceOf: UnscopedQueryError });
      // WHERE CURRENT OF: the row a cursor of tenant 1 is on, updated under tenant 2
      await s.transaction(async (transaction) => {
        await withTenant(1, () => s.query('DECLARE c4 CURSOR FOR SELECT * FROM products WHERE store_id = 1 FOR UPDATE', { transaction }));
        await withTenant(1, () => s.query('FETCH 1 FROM c4', { transaction }));
        const e = await t.throwsAsync(
          () => withTenant(2, () => s.query(`UPDATE products SET name = 'moved' WHERE CURRENT OF c4`, { transaction })),
          { instanceOf: UnscopedQueryError },
        );
        t.regex(e?.message ?? '', /cursor c4/);
        await withTenant(1, () => s.query(`UPDATE products SET name = 'kept' WHERE CURRENT OF c4`, { transaction }));
      });
      const [names] = (await s.query('SELECT store_id, id, name FROM products ORDER BY store_id, id')) as [unknown[], unknown];
      t.deepEqual(names, [
        { store_id: '1', id: '1', name: 'kept' },
        { store_id: '1', id: '2', name: 'b-1' },
        { store_id: '2', id: '1', name: 'a-2' },
        { store_id: '2', id: '3', name: 'c-2' },
      ]);
    } finally {
      multitenant(s, { notice: false, audit: 'off' });
    }
  },
);
