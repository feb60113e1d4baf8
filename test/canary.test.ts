// The install-time canary: multitenant() builds (never sends) the SQL of representative operations on
// throwaway tenant models and checks that each carries the tenant predicate where it must. A wrapper
// that is present but no longer on the path Sequelize takes makes the install fail, naming the path.
import test from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import { MultitenantError, multitenant } from '../src/index';
import { runCanary } from '../src/verify/canary';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const fresh = (options: ConstructorParameters<typeof Sequelize>[1] = {}) =>
  new Sequelize('postgres://u@127.0.0.1:1/none', { logging: false, ...options });

/**
 * Sequelize keeps calling the original function while multitenant() believes it installed its wrapper:
 * what a release that moved the call to another function (or bound the old one early) looks like.
 */
function wrapperIgnored(owner: object, name: string): void {
  const original = (owner as Record<string, unknown>)[name];
  Object.defineProperty(owner, name, { configurable: true, get: () => original, set: () => undefined });
}

test('a healthy Sequelize passes: every operation built SQL and every tenant-table reference is scoped', (t) => {
  const s = fresh();
  multitenant(s);
  const report = runCanary(s, { filters: true });
  t.true(report.operations.length >= 10);
  for (const op of report.operations) {
    t.true(op.statements.length > 0, op.path);
    t.deepEqual(op.unscoped, [], op.path);
  }
  const find = report.operations.find((op) => op.path.startsWith('findAll with nested includes'));
  // the shapes the issue names are really there: a limited subquery, a subquery filter, LEFT and INNER joins
  t.regex(find?.statements[0] ?? '', /FROM \(SELECT .* LIMIT 2\) AS/);
  t.regex(find?.statements[0] ?? '', /\( SELECT .* LIMIT 1 \) IS NOT NULL/);
  t.regex(find?.statements[0] ?? '', /INNER JOIN .* LEFT OUTER JOIN/);
});

test('the throwaway models leave nothing behind and the application define hooks never see them', (t) => {
  const s = fresh();
  const seen: string[] = [];
  s.addHook('beforeDefine', (_attributes, options) => void seen.push(`before:${String(options.modelName)}`));
  s.addHook('afterDefine', (model) => void seen.push(`after:${model.name}`));
  const Product = s.define('Product', { store_id: DataTypes.BIGINT }, { tenantKey: 'store_id' } as never);
  const query = s.query;
  multitenant(s);
  t.deepEqual(seen, ['before:Product', 'after:Product']);
  t.deepEqual(Object.keys(s.models), ['Product']);
  t.deepEqual(
    (s as unknown as { modelManager: { models: { name: string }[] } }).modelManager.models.map((m) => m.name),
    ['Product'],
  );
  t.is(s.query, query, 'sequelize.query is the prototype method again');
  t.false(Object.hasOwn(s, 'query'));
  t.false(Object.hasOwn(s, 'runHooks'));
  t.is(Product.getTableName() as unknown as string, 'Products');
});

test('application define defaults and naming options do not fool the canary', (t) => {
  for (const options of [
    { quoteIdentifiers: false },
    { minifyAliases: true },
    { define: { underscored: true, paranoid: true, timestamps: true, freezeTableName: false, schema: 'app' } },
    { define: { defaultScope: { where: { deleted: false } } } },
  ] as ConstructorParameters<typeof Sequelize>[1][]) {
    const s = fresh(options);
    t.notThrows(() => multitenant(s), JSON.stringify(options));
  }
});

const PATHS: Array<[string, (s: Sequelize) => void, RegExp]> = [
  ['select', (s) => wrapperIgnored(s.getQueryInterface(), 'select'), /findAll with nested includes.*FROM "mt_canary_parent"/],
  ['rawSelect', (s) => wrapperIgnored(s.getQueryInterface(), 'rawSelect'), /count with an include \(QueryInterface#rawSelect\)/],
  ['bulkUpdate', (s) => wrapperIgnored(s.getQueryInterface(), 'bulkUpdate'), /Model\.update \(QueryInterface#bulkUpdate\): UPDATE/],
  ['update', (s) => wrapperIgnored(s.getQueryInterface(), 'update'), /instance save of a changed row \(QueryInterface#update\)/],
  ['increment', (s) => wrapperIgnored(s.getQueryInterface(), 'increment'), /Model\.increment/],
  ['bulkDelete', (s) => wrapperIgnored(s.getQueryInterface(), 'bulkDelete'), /Model\.destroy \(QueryInterface#bulkDelete\)/],
  ['delete', (s) => wrapperIgnored(s.getQueryInterface(), 'delete'), /instance destroy \(QueryInterface#delete\)/],
  ['deleteQuery', (s) => wrapperIgnored(s.getQueryInterface().queryGenerator as object, 'deleteQuery'), /destroy with a limit/],
  [
    'generateJoin',
    (s) => wrapperIgnored(s.getQueryInterface().queryGenerator as object, 'generateJoin'),
    /findAll with nested includes.*JOIN "mt_canary_parent" AS "owner"/,
  ],
  [
    'generateThroughJoin',
    (s) => wrapperIgnored(s.getQueryInterface().queryGenerator as object, 'generateThroughJoin'),
    /belongsToMany include \(QueryGenerator#generateThroughJoin\): JOIN "mt_canary_tagging"/,
  ],
  [
    '_generateSubQueryFilter',
    (s) => wrapperIgnored(s.getQueryInterface().queryGenerator as object, '_generateSubQueryFilter'),
    /findAll with nested includes.*FROM "mt_canary_child" AS "children"/,
  ],
];

for (const [name, ignore, names] of PATHS) {
  test(`a wrapper Sequelize no longer calls (${name}) fails the install, naming the unscoped path`, (t) => {
    const s = fresh();
    ignore(s);
    const err = t.throws(() => multitenant(s), { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', /the install-time canary found SQL built by this Sequelize \(6\.\d+\.\d+\) without the tenant predicate/);
    t.regex(err?.message ?? '', names);
    // the other paths are still proven: only the broken one is named
    t.notRegex(err?.message ?? '', /bulkCreate \(QueryInterface#bulkInsert/);
  });
}

test('writeOnly mode checks the inserts only; switching writeOnly off proves the filters again', (t) => {
  const s = fresh();
  wrapperIgnored(s.getQueryInterface(), 'select');
  t.notThrows(() => multitenant(s, { writeOnly: true }));
  const err = t.throws(() => multitenant(s, {}), { instanceOf: MultitenantError });
  t.regex(err?.message ?? '', /QueryInterface#select/);
});

test('an insert that would lose the tenant fails the install too', (t) => {
  const s = fresh();
  const generator = s.getQueryInterface().queryGenerator as { insertQuery: (...a: unknown[]) => unknown };
  const insertQuery = generator.insertQuery;
  // a Sequelize that dropped the tenant column between the model and the SQL (the values of `fields` only)
  generator.insertQuery = function (this: unknown, table: unknown, values: unknown, ...rest: unknown[]) {
    const { tenant_id: _dropped, ...others } = values as Record<string, unknown>;
    return insertQuery.call(this, table, others, ...rest);
  };
  const err = t.throws(() => multitenant(s), { instanceOf: MultitenantError });
  t.regex(err?.message ?? '', /create \(QueryInterface#insert, QueryGenerator#insertQuery\): INTO "mt_canary_parent"/);
});

let db: TestDatabase | undefined;
test.after.always(async () => db?.drop());

test('nothing reaches the database: no statement is sent during or after the install', async (t) => {
  db = await createTestDatabase();
  const sent: string[] = [];
  const s = new Sequelize(db.url, { logging: (sql) => void sent.push(sql) });
  try {
    await s.query('SELECT 1');
    sent.length = 0;
    multitenant(s, { strict: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.deepEqual(sent, []);
    const [rows] = await s.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'mt_canary%'`);
    t.deepEqual(rows, [{ n: 0 }]);
  } finally {
    await s.close();
  }
});
