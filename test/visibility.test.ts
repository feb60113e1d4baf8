// The tenant where operators look (#30): on Sequelize's log line of each statement (logTenant), as a
// sqlcommenter tag in the SQL the server receives (sqlComment) — read back from the server itself — and on
// the OpenTelemetry spans of the pg instrumentation (tenantSpanProcessor, real spans from a real exporter).
// Hostile tenant values cannot leave the comment. Off by default: nothing changes.

import { trace } from '@opentelemetry/api';
import anyTest, { type TestFn } from 'ava';
import fc from 'fast-check';
import { DataTypes, type Model, type ModelStatic, QueryTypes, Sequelize } from 'sequelize';
import { InvalidTenantError, MultitenantError, multitenant, tenantSpanProcessor, withoutTenant, withTenant } from '../src/index';
import { tagWithTenant } from '../src/visibility';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { exporter, provider } from './helpers/otel';

// biome-ignore lint/suspicious/noExplicitAny: test models
type M = ModelStatic<Model<any, any>>;
interface Ctx {
  db: TestDatabase;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase();
  t.context = { db };
});
test.after.always(async (t) => {
  await t.context.db?.drop();
  await provider.shutdown();
});

/** An instance of its own with a text tenant column (any value a tenant can have), its lines collected. */
async function instance(
  db: TestDatabase,
  options: Parameters<typeof multitenant>[1],
  { lines = [] as unknown[][], benchmark = false, fresh = true } = {},
) {
  const s = new Sequelize(db.url, { logging: (...args: unknown[]) => lines.push(args), benchmark, pool: { max: 1 } });
  multitenant(s, { notice: false, ...options });
  const Note = s.define(
    'Note',
    { team: { type: DataTypes.TEXT, primaryKey: true }, id: { type: DataTypes.INTEGER, primaryKey: true }, body: DataTypes.TEXT },
    { tableName: 'notes', tenantKey: 'team', timestamps: false },
  ) as M;
  if (fresh) await withoutTenant(() => Note.sync({ force: true }));
  return { s, Note, lines };
}

/** An id as the library shows it (test's own copy of the rule: URL-encoded, !'()*~ too). */
const shown = (id: string) => encodeURIComponent(id).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const HOSTILE = ['7', "o'hara", 'x*/; DROP TABLE notes; --', '/* open', 'a*/b', '-- line', 'é😀', '%2F'];

test.serial(
  'logTenant: each statement’s log line says its tenant, and the logging options carry it; off, the lines are Sequelize’s own',
  async (t) => {
    const { s, Note, lines } = await instance(t.context.db, { logTenant: true });
    try {
      lines.length = 0;
      await withTenant('7', () => Note.create({ id: 1, body: 'x' }));
      await withTenant(['7', "o'hara"], () => Note.findAll());
      await withoutTenant(() => Note.count());
      await s.query('SELECT 1');
      const text = lines.map((l) => String(l[0]));
      t.regex(text[0] ?? '', /^Executing \(default; tenant=7\): INSERT INTO "notes"/);
      t.regex(text[1] ?? '', /^Executing \(default; tenant=7,o%27hara\): SELECT .* FROM "notes"/);
      t.regex(text[2] ?? '', /^Executing \(default; tenant=\(withoutTenant\)\): SELECT count/);
      t.regex(text[3] ?? '', /^Executing \(default; tenant=\(none\)\): SELECT 1/);
      t.like(lines[0]?.[1], { tenant: '7' });
      t.deepEqual((lines[1]?.[1] as { tenant?: unknown } | undefined)?.tenant, ['7', "o'hara"]);
      t.is((lines[2]?.[1] as { tenant?: unknown } | undefined)?.tenant, undefined);
      // inside a transaction: the transaction's id stays, the tenant joins it
      lines.length = 0;
      await withTenant('7', () => s.transaction((transaction) => Note.findAll({ transaction })));
      t.regex(String(lines[1]?.[0]), /^Executing \([0-9a-f-]{36}; tenant=7\): SELECT/);
      // turned off again
      multitenant(s, { notice: false, logTenant: false });
      lines.length = 0;
      await withTenant('7', () => Note.findAll());
      t.regex(String(lines[0]?.[0]), /^Executing \(default\): SELECT/);
    } finally {
      await s.close();
    }
  },
);

test.serial('logTenant: a tenant id cannot forge a line nor pass for two tenants or for withoutTenant', async (t) => {
  const { s, Note, lines } = await instance(t.context.db, { logTenant: true });
  try {
    lines.length = 0;
    await withTenant('acme\nExecuting (default; tenant=beta): SELECT 1', () => Note.findAll());
    await withTenant('1,2', () => Note.findAll());
    await withTenant(['1', '2'], () => Note.findAll());
    await withTenant('(withoutTenant)', () => Note.findAll());
    await withoutTenant(() => Note.findAll());
    // (the SQL after the label holds the value as Sequelize writes it: its line breaks are Sequelize's own)
    const labels = lines.map((l) => /^Executing \(default; tenant=(\(\w+\)|[^)\n]*)\): /.exec(String(l[0]))?.[1]);
    t.deepEqual(labels, [
      'acme%0AExecuting%20%28default%3B%20tenant%3Dbeta%29%3A%20SELECT%201',
      '1%2C2',
      '1,2',
      '%28withoutTenant%29',
      '(withoutTenant)',
    ]);
  } finally {
    await s.close();
  }
});

test.serial('logTenant with benchmark: the Executed line says the tenant, with the time', async (t) => {
  const { s, Note, lines } = await instance(t.context.db, { logTenant: true }, { benchmark: true });
  try {
    lines.length = 0;
    await withTenant('7', () => Note.findAll());
    t.regex(String(lines[0]?.[0]), /^Executed \(default; tenant=7\): SELECT/);
    t.is(typeof lines[0]?.[1], 'number');
    t.like(lines[0]?.[2], { tenant: '7' });
  } finally {
    await s.close();
  }
});

test.serial(
  'sqlComment: the server receives the tenant tag (read back from pg_stat_activity); hostile tenants stay inside it; rows as without it',
  async (t) => {
    // (the auditor refuses reads of pg_stat_activity — other sessions' statements — and this test reads it back:
    // audit stays off here; the tagged statements under the auditor are the next test's)
    const { s, Note, lines } = await instance(t.context.db, { sqlComment: true, logTenant: true, audit: 'off' });
    try {
      for (const [i, team] of HOSTILE.entries()) {
        await withTenant(team, async () => {
          await Note.create({ id: i, body: `body ${i}` });
          const [row] = await s.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()', {
            type: QueryTypes.SELECT,
          });
          // the value decodes once to the label, whose id is URL-encoded itself
          const tag = `/*tenant='${encodeURIComponent(shown(team))}'*/`;
          t.true(row?.query.endsWith(` ${tag}`), `${team}: ${row?.query}`);
          // one tag, no way out of it: no / of the tenant, hence no */ and no nested /*
          t.notRegex(tag.slice(2, -2), /\/|\*\//);
          const found = await Note.findAll({ raw: true });
          t.deepEqual(found, [{ team, id: i, body: `body ${i}` }], team);
        });
      }
      // what Sequelize logs is what was sent: the tag before the statement's ;
      t.true(
        lines.some((l) => /^Executing \(default; tenant=7\): INSERT INTO "notes" .* \/\*tenant='7'\*\/;$/.test(String(l[0]))),
        lines.map((l) => l[0]).join('\n'),
      );
      // a statement that ends in a line comment keeps its tag on a line of its own
      const [ended] = await withTenant('7', () =>
        s.query<{ n: string }>("SELECT count(*) AS n FROM notes WHERE team = '7' -- the end", { type: QueryTypes.SELECT }),
      );
      t.is(Number(ended?.n), 1);
      // outside a tenant: unchanged
      const [none] = await s.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()', {
        type: QueryTypes.SELECT,
      });
      t.is(none?.query, 'SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()');
    } finally {
      await s.close();
    }
    // (one instance at a time: the embedded PGlite serves one connection)
    const plain = await instance(t.context.db, { audit: 'off' }, { fresh: false });
    try {
      // the table still whole: nothing of a hostile tenant ran as SQL
      const [count] = await plain.s.query<{ n: string }>('SELECT count(*) AS n FROM notes', { type: QueryTypes.SELECT });
      t.is(Number(count?.n), HOSTILE.length);
      // off by default: an instance without the options sends and logs Sequelize's own text
      plain.lines.length = 0;
      await withTenant('7', () => plain.Note.findAll());
      t.regex(String(plain.lines[0]?.[0]), /^Executing \(default\): SELECT .* WHERE "Note"\."team" = '7';$/);
    } finally {
      await plain.s.close();
    }
  },
);

test.serial('sqlComment under the auditor (throw) and under rls: the tagged statements are checked and run as before', async (t) => {
  for (const options of [{ audit: 'throw' as const }, { rls: true }]) {
    const { s, Note } = await instance(t.context.db, { sqlComment: true, ...options });
    try {
      await withTenant('7', () => Note.create({ id: 1, body: 'x' }));
      t.deepEqual(await withTenant('7', () => Note.findAll({ raw: true })), [{ team: '7', id: 1, body: 'x' }]);
      if (options.audit) {
        await t.throwsAsync(
          withTenant('7', () => s.query('SELECT * FROM notes')),
          { instanceOf: MultitenantError },
        );
      }
    } finally {
      await s.close();
    }
  }
});

test.serial(
  'tenantSpanProcessor: the pg instrumentation’s spans carry tenant.id as each statement ran; none outside a tenant',
  async (t) => {
    const { s, Note } = await instance(t.context.db, {});
    try {
      exporter.reset();
      await withTenant('7', () => Note.create({ id: 1, body: 'x' }));
      await withTenant(['7', '8'], () => Note.findAll());
      await withoutTenant(() => Note.count());
      await s.query('SELECT 1');
      await withTenant('9', () => trace.getTracer('app').startActiveSpan('handler', (span) => span.end()));
      await provider.forceFlush();
      const spans = exporter.getFinishedSpans();
      const db = spans.filter((x) => x.attributes['db.system'] === 'postgresql' || x.attributes['db.system.name'] === 'postgresql');
      const seen = db.map((x) => [
        String(x.attributes['db.statement'] ?? x.attributes['db.query.text'] ?? '').slice(0, 20),
        x.attributes['tenant.id'],
      ]);
      t.deepEqual(
        seen.filter(([sql]) => /INSERT INTO "notes"|SELECT "team"|SELECT count|SELECT 1/.test(String(sql))),
        [
          ['INSERT INTO "notes" ', '7'],
          ['SELECT "team", "id",', '7,8'],
          ['SELECT count(*) AS "', '(withoutTenant)'],
          ['SELECT 1', undefined],
        ],
      );
      // a span that is no database call: untouched by default
      t.is(spans.find((x) => x.name === 'handler')?.attributes['tenant.id'], undefined);
    } finally {
      await s.close();
    }
  },
);

test('tenantSpanProcessor options: every span, another attribute name; a misspelt option refused', async (t) => {
  const got: Record<string, string> = {};
  const span = { attributes: {}, setAttribute: (k: string, v: string) => (got[k] = v) };
  const all = tenantSpanProcessor({ spans: 'all', attribute: 'app.tenant' });
  withTenant('5', () => all.onStart(span));
  t.deepEqual(got, { 'app.tenant': '5' });
  const dbOnly = tenantSpanProcessor();
  withTenant('5', () => dbOnly.onStart(span));
  t.deepEqual(got, { 'app.tenant': '5' }, 'no db.system: no attribute');
  t.throws(() => tenantSpanProcessor({ atribute: 'x' } as never), { message: /did you mean 'attribute'/ });
  await t.notThrowsAsync(all.forceFlush());
  await t.notThrowsAsync(all.shutdown());
});

test('fuzz: whatever the tenant id, the tag is one comment — PostgreSQL’s parser reads the tagged statement as the untagged one', async (t) => {
  const pg = require('libpg-query') as { loadModule(): Promise<void>; parseSync(sql: string): { stmts: unknown[] } };
  await pg.loadModule();
  // the parse tree without positions (the tag moves the statement's length, nothing else)
  const tree = (sql: string) => JSON.stringify(pg.parseSync(sql).stmts, (k, v) => (k === 'stmt_len' || k === 'location' ? undefined : v));
  const statements = [
    `SELECT "id" FROM "notes" AS "Note" WHERE "Note"."team" = 'a';`,
    'UPDATE notes SET body = $1 WHERE team = $2 AND id = 1',
    "INSERT INTO notes (team, id) VALUES ('a', 1) RETURNING *; ",
    'SELECT 1 -- a line comment',
    'SELECT 1 /* a block */',
  ];
  const tenant = fc.oneof(
    fc.string({ unit: 'binary', minLength: 1 }),
    fc.constantFrom("'", '*/', '/*', '--', '\\', '*/; DROP TABLE notes; --', '/*/', "x'/*", '\n', '$1', '%2F'),
    fc.array(fc.constantFrom('*', '/', "'", '-', ';', '\n', '\\', 'a', '$'), { minLength: 1, maxLength: 12 }).map((a) => a.join('')),
  );
  let tagged = 0;
  const result = fc.check(
    fc.property(tenant, fc.constantFrom(...statements), (team, sql) => {
      let sent: string;
      try {
        sent = withTenant(team, () => tagWithTenant(sql));
      } catch (err) {
        if (err instanceof InvalidTenantError) return; // ('', ' ', '\u0000': no tenant, refused before any SQL)
        throw err;
      }
      if (sent === sql) throw new Error(`not tagged: ${sql}`);
      if (tree(sent) !== tree(sql)) throw new Error(`${JSON.stringify(team)}: ${sent}`);
      if (sent.match(/\/\*/g)?.length !== (sql.match(/\/\*/g)?.length ?? 0) + 1) throw new Error(`one more comment: ${sent}`);
      tagged++;
    }),
    { numRuns: 2000 },
  );
  t.false(result.failed, fc.defaultReportMessage(result));
  t.is(result.numRuns, 2000);
  t.true(tagged > 1500, `${tagged} of 2,000 ids were tenants and were tagged`);
});
