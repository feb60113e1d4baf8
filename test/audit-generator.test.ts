// Property-based statements for the auditor: a sub-select on a tenant table — with or without its
// tenant constraint — wrapped in random nesting and placed in a random clause of a statement over
// tenant 1's rows. The auditor must refuse every unconstrained one and pass every constrained one;
// each statement is also run on PostgreSQL (helpers/reach.ts) to prove it is valid SQL and that the
// unconstrained ones really reach tenant 2. `MULTITENANT_AUDIT_RUNS` sets the number of statements.
import anyTest, { type TestFn } from 'ava';
import fc from 'fast-check';
import type { Sequelize } from 'sequelize';
import { analysisOf } from '../src/audit/auditor';
import { firstUnconstrained } from '../src/audit/evaluate';
import { normalizeTenant } from '../src/tenant';
import { onCitus, type TestDatabase } from './helpers/db';
import { reachDatabaseHooks, reaches, runOnce } from './helpers/reach';

const test = anyTest as TestFn<{ db: TestDatabase; sequelize: Sequelize }>;
const serial = onCitus ? test.skip : test.serial;

reachDatabaseHooks(test);

/**
 * The FROM item the sub-select reads its tenant table through (alias `a`): every kind PostgreSQL 15 runs
 * (JSON_TABLE, PostgreSQL 17's, is checked by analysis alone in audit-closed.test.ts).
 */
const FROM_ITEMS: Array<[string, (table: string, a: string, n: number) => string]> = [
  ['table', (t, a) => `${t} ${a}`],
  ['ONLY', (t, a) => `ONLY ${t} ${a}`],
  ['inheritance *', (t, a) => `${t} * AS ${a}`],
  ['TABLESAMPLE', (t, a) => `${t} ${a} TABLESAMPLE SYSTEM (100)`],
  ['TABLESAMPLE REPEATABLE', (t, a) => `${t} ${a} TABLESAMPLE BERNOULLI (100) REPEATABLE (7)`],
  ['sub-select', (t, a) => `(SELECT * FROM ${t}) ${a}`],
  ['LATERAL sub-select', (t, a) => `LATERAL (SELECT * FROM ${t}) ${a}`],
  ['CROSS JOIN', (t, a, n) => `(VALUES (1)) j${n}(x) CROSS JOIN ${t} ${a}`],
  ['LEFT JOIN', (t, a, n) => `${t} ${a} LEFT JOIN (VALUES (1)) j${n}(x) ON true`],
  ['RIGHT JOIN', (t, a, n) => `(VALUES (1)) j${n}(x) RIGHT JOIN ${t} ${a} ON true`],
  ['FULL JOIN', (t, a, n) => `${t} ${a} FULL JOIN (VALUES (1)) j${n}(x) ON false`],
  ['NATURAL JOIN', (t, a, n) => `${t} ${a} NATURAL JOIN (VALUES (1)) j${n}(x)`],
  ['parenthesised join', (t, a, n) => `(${t} ${a} JOIN (VALUES (1)) j${n}(x) ON true)`],
  ['ROWS FROM', (t, a, n) => `ROWS FROM (generate_series(1, 1)) g${n} JOIN ${t} ${a} ON true`],
  ['XMLTABLE', (t, a, n) => `${t} ${a}, XMLTABLE('/r' PASSING ('<r/>'::xml) COLUMNS x text PATH '.') x${n}`],
  ['JOIN LATERAL (right side)', (t, a, n) => `(VALUES (1)) j${n}(x) JOIN LATERAL (SELECT * FROM ${t}) ${a} ON true`],
  ['JOIN LATERAL over the left side', (t, a, n) => `${t} ${a} JOIN LATERAL (SELECT ${a}.store_id AS s${n}) l${n} ON true`],
];

/** The sub-select: 1 when tenant 2's product 3 is visible, else 0 — unless constrained to tenant 1. */
const inner = (n: number, constrained: boolean, table: 'products' | 'purchases', from = 0) => {
  const a = table === 'products' ? `p${n}` : `u${n}`;
  const item = (FROM_ITEMS[from] as [string, (t: string, a: string, n: number) => string])[1](table, a, n);
  const row = table === 'products' ? `${a}.id = 3` : `${a}.product_id = 3`;
  return `(SELECT count(*)::int FROM ${item} WHERE ${constrained ? `${a}.store_id = 1 AND ` : ''}${row})`;
};

/** Nesting around an integer expression (each keeps it an integer that is 0 or 1). */
const WRAPS: Array<(e: string, n: number) => string> = [
  (e) => `(SELECT ${e})`,
  (e) => `COALESCE(${e}, 0)`,
  (e, n) => `(SELECT v${n} FROM (SELECT ${e} AS v${n}) s${n})`,
  (e, n) => `(SELECT max(v) FROM (VALUES (${e})) AS vv${n}(v))`,
  (e, n) => `(WITH c${n} AS (SELECT ${e} AS v) SELECT v FROM c${n})`,
  (e) => `(CASE WHEN ${e} > 0 THEN 1 ELSE 0 END)`,
];

/** Statements over tenant 1 whose result or writes depend on E (0 or 1). */
const CLAUSES: Array<[string, (e: string) => string]> = [
  ['target list', (e) => `SELECT id, ${e} AS x FROM products WHERE store_id = 1 ORDER BY id`],
  ['WHERE', (e) => `SELECT id FROM products WHERE store_id = 1 AND ${e} = 0 ORDER BY id`],
  ['ORDER BY', (e) => `SELECT id FROM products WHERE store_id = 1 ORDER BY (${e}) * id DESC, id`],
  ['LIMIT', (e) => `SELECT id FROM products WHERE store_id = 1 ORDER BY id LIMIT ${e} + 1`],
  ['OFFSET', (e) => `SELECT id FROM products WHERE store_id = 1 ORDER BY id OFFSET ${e}`],
  ['HAVING', (e) => `SELECT store_id FROM products WHERE store_id = 1 GROUP BY store_id HAVING ${e} = 0`],
  [
    'WINDOW',
    (e) => `SELECT id, row_number() OVER w AS r FROM products WHERE store_id = 1 WINDOW w AS (ORDER BY (${e}) * id DESC, id) ORDER BY id`,
  ],
  ['IN (VALUES)', (e) => `SELECT id FROM products WHERE store_id = 1 AND id IN (VALUES (${e} + 1)) ORDER BY id`],
  ['LATERAL', (e) => `SELECT p.id, l.v FROM products p, LATERAL (SELECT ${e} AS v) l WHERE p.store_id = 1 ORDER BY p.id`],
  ['CTE', (e) => `WITH c AS (SELECT ${e} AS v) SELECT v FROM c`],
  ['function in FROM', (e) => `SELECT g FROM generate_series(1, ${e} + 1) g`],
  ['UPDATE SET', (e) => `UPDATE products SET price = ${e} WHERE store_id = 1 AND id = 1`],
  ['UPDATE WHERE', (e) => `UPDATE products SET price = 7 WHERE store_id = 1 AND ${e} = 0`],
  ['RETURNING', (e) => `UPDATE products SET price = price WHERE store_id = 1 AND id = 1 RETURNING ${e} AS x`],
  ['DELETE WHERE', (e) => `DELETE FROM purchases WHERE store_id = 1 AND ${e} = 0`],
  ['INSERT VALUES', (e) => `INSERT INTO purchases (id, store_id, product_id) VALUES (50, 1, ${e})`],
  ['INSERT SELECT', (e) => `INSERT INTO purchases (id, store_id, product_id) SELECT 51, 1, ${e}`],
  [
    'ON CONFLICT SET',
    (e) => `INSERT INTO products (id, store_id, name) VALUES (1, 1, 'z') ON CONFLICT (id, store_id) DO UPDATE SET price = ${e}`,
  ],
  [
    'MERGE source',
    (e) => `MERGE INTO products t USING (SELECT ${e} AS v) s ON t.store_id = 1 AND t.id = 1 WHEN MATCHED THEN UPDATE SET price = s.v`,
  ],
  [
    'MERGE action',
    (e) => `MERGE INTO products t USING (SELECT 1 AS k) s ON t.store_id = 1 AND t.id = 1 WHEN MATCHED THEN UPDATE SET price = ${e}`,
  ],
];

const shape = fc.record({
  clause: fc.integer({ min: 0, max: CLAUSES.length - 1 }),
  wraps: fc.array(fc.integer({ min: 0, max: WRAPS.length - 1 }), { maxLength: 3 }),
  table: fc.constantFrom<'products' | 'purchases'>('products', 'purchases'),
  from: fc.integer({ min: 0, max: FROM_ITEMS.length - 1 }),
  constrained: fc.boolean(),
});

serial(
  'generated statements: every unconstrained one is refused and reaches tenant 2; every constrained one passes and does not',
  async (t) => {
    const runs = Number(process.env.MULTITENANT_AUDIT_RUNS ?? 120);
    const counts = { constrained: 0, unconstrained: 0, reached: 0 };
    const clauses = new Set<string>();
    const fromItems = new Set<number>();
    await fc.assert(
      fc.asyncProperty(shape, async ({ clause, wraps, table, from, constrained }) => {
        let e = inner(0, constrained, table, from);
        wraps.forEach((w, i) => {
          e = (WRAPS[w] as (e: string, n: number) => string)(e, i + 1);
        });
        const [clauseName, build] = CLAUSES[clause] as [string, (e: string) => string];
        const name = `${clauseName}, FROM ${(FROM_ITEMS[from] as [string, unknown])[0]}`;
        const sql = build(e);
        const a = await analysisOf(t.context.sequelize, sql);
        const refused =
          a.kind === 'unscoped' ||
          a.kind === 'unknowable' ||
          (a.kind === 'graph' && !!firstUnconstrained(a.graph, normalizeTenant(1, {}), undefined));
        if (a.kind === 'unparsed') throw new Error(`unparsed: ${sql}`);
        if (refused !== !constrained)
          throw new Error(`${constrained ? 'refused a constrained' : 'passed an unconstrained'} statement (${name}): ${sql}`);
        const valid = await runOnce(t.context.sequelize, { sql }, false);
        if (valid.includes('"result":"error: ')) throw new Error(`not valid SQL (${valid.slice(0, 200)}): ${sql}`);
        const reached = await reaches(t.context.sequelize, { sql });
        if (constrained && reached) throw new Error(`a constrained statement reaches tenant 2 (${name}): ${sql}`);
        if (!constrained && !reached)
          throw new Error(`the generator made an unconstrained statement that does not reach tenant 2 (${name}): ${sql}`);
        counts[constrained ? 'constrained' : 'unconstrained']++;
        if (reached) counts.reached++;
        clauses.add(clauseName);
        fromItems.add(from);
      }),
      { numRuns: runs, seed: Number(process.env.MULTITENANT_AUDIT_SEED ?? 20261127) },
    );
    t.log(
      `${runs} statements in ${clauses.size} clauses × ${fromItems.size} FROM-item kinds: ${counts.unconstrained} unconstrained (all refused, all reaching tenant 2), ${counts.constrained} constrained (all passed, none reaching)`,
    );
    t.is(counts.reached, counts.unconstrained, 'every unconstrained statement reached tenant 2');
    t.true(counts.constrained > 0 && counts.unconstrained > 0, 'both kinds were generated');
  },
);
