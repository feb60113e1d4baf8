// Every node kind of the installed libpg-query's grammar (read from its type definitions, not from a
// hand list) is either read by the auditor or refused wherever it appears; every statement kind has a
// class. A kind added by a future parser release fails this test until it is classified.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import test from 'ava';
import { analyzeStatements } from '../src/audit/analyze';
import { READ_NODES, STATEMENTS } from '../src/audit/kinds';

const parserDir = dirname(require.resolve('libpg-query/package.json'));
const typesFile = require.resolve('@pgsql/types/types.d.ts', { paths: [parserDir] });
const source = readFileSync(typesFile, 'utf8');
const union = source.slice(source.indexOf('export type Node ='), source.indexOf('export interface', source.indexOf('export type Node =')));
const KINDS = [...union.matchAll(/\{\s*(\w+):/g)].map((m) => m[1] as string);

const tables = new Map([['.products', { column: 'store_id', isTenantTable: false }]]);
const where = {
  A_Expr: {
    kind: 'AEXPR_OP',
    name: [{ String: { sval: '=' } }],
    lexpr: { ColumnRef: { fields: [{ String: { sval: 'store_id' } }] } },
    rexpr: { A_Const: { ival: { ival: 1 } } },
  },
};
/** A SELECT over products constrained to tenant 1, with `node` in its target list. */
const selectWith = (node: unknown) => ({
  SelectStmt: {
    targetList: [{ ResTarget: { val: node } }],
    fromClause: [{ RangeVar: { relname: 'products', inh: true } }],
    whereClause: where,
  },
});
const analyze = (stmt: unknown) => analyzeStatements([{ stmt }], tables, () => []);

test('the grammar has the node kinds this test expects to read', (t) => {
  t.true(KINDS.length > 250, `${KINDS.length} kinds read from ${typesFile}`);
  for (const k of ['SelectStmt', 'RangeTableSample', 'JsonTable', 'CreatePolicyStmt', 'A_Expr']) t.true(KINDS.includes(k), k);
});

test('every statement kind of the grammar has a class', (t) => {
  const statements = KINDS.filter((k) => /Stmt$/.test(k));
  const missing = statements.filter((k) => !(k in STATEMENTS));
  t.deepEqual(missing, [], 'statement kinds with no class: add them to STATEMENTS in src/audit/kinds.ts');
  const stale = Object.keys(STATEMENTS).filter((k) => !KINDS.includes(k));
  t.deepEqual(stale, [], 'classes for kinds the grammar does not have');
  const count = (c: string) => statements.filter((k) => STATEMENTS[k] === c).length;
  t.log(
    `${statements.length} statement kinds: ${count('analyzed')} analyzed, ${count('defines')} define later SQL, ${count('schema')} schema changes, ${count('harmless')} harmless, ${count('unknowable')} refused`,
  );
  // each class does what it says on a statement naming no tenant table
  for (const k of statements) {
    const cls = STATEMENTS[k];
    if (cls === 'analyzed') continue; // read by the walker: tested by shape in audit-closed.test.ts and the corpora
    const a = analyze({ [k]: {} });
    const expected = cls === 'harmless' || cls === 'schema' ? 'pass' : cls === 'defines' ? 'schema' : 'unknowable';
    t.is(a.kind, expected, `${k} (${cls})`);
  }
});

test('every other node kind is read by the walker, or refused wherever it appears', (t) => {
  const others = KINDS.filter((k) => !/Stmt$/.test(k));
  let read = 0;
  let refused = 0;
  const wrong: string[] = [];
  for (const k of others) {
    if (READ_NODES.has(k)) {
      read++;
      continue;
    }
    // in the target list, in WHERE beside the constraint, in a sub-select, in a FROM list
    for (const stmt of [
      selectWith({ [k]: {} }),
      { SelectStmt: { ...selectWith(null).SelectStmt, whereClause: { BoolExpr: { boolop: 'AND_EXPR', args: [where, { [k]: {} }] } } } },
      selectWith({ SubLink: { subLinkType: 'EXPR_SUBLINK', subselect: selectWith({ [k]: {} }) } }),
      { SelectStmt: { targetList: [], fromClause: [{ [k]: {} }] } },
    ]) {
      const a = analyze(stmt);
      if (a.kind !== 'unknowable' || !a.reason.includes(k)) wrong.push(`${k}: ${a.kind}`);
    }
    refused++;
  }
  t.deepEqual(wrong, []);
  t.log(`${others.length} other node kinds: ${read} read by the walker, ${refused} refused wherever they appear`);
  t.is(read + refused, others.length);
});

test('every node kind the walker reads is a kind of the grammar', (t) => {
  t.deepEqual(
    [...READ_NODES].filter((k) => !KINDS.includes(k)),
    [],
  );
});
