// `npx sequelize-multitenant export|delete|import|copy`: the built CLI run as a process on an application
// module (test/fixtures/lifecycle/app.cjs) against a real database — exit codes, what it prints, the rows
// it leaves; export → delete → import restores identical rows, the other tenant untouched byte for byte;
// Ctrl-C stops a delete between two batches and a re-run finishes. The test's own connection is closed
// while the CLI runs (the embedded PGlite serves one at a time).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { QueryTypes, Sequelize } from 'sequelize';
import { createTestDatabase, type TestDatabase } from './helpers/db';

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const app = join(root, 'test', 'fixtures', 'lifecycle', 'app.cjs');

interface Ctx {
  db: TestDatabase;
}
const test = anyTest as TestFn<Ctx>;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(db: TestDatabase, args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, DATABASE_URL: db.url, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A plain connection (no library) for the time of fn: seeding and reading back every row. */
async function plain<T>(db: TestDatabase, fn: (s: Sequelize) => Promise<T>): Promise<T> {
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

async function seed(db: TestDatabase, orders = 20): Promise<void> {
  await plain(db, async (s) => {
    await s.query('TRUNCATE orders, products, stores');
    await s.query("INSERT INTO stores (id, name) VALUES (1, 'one'), (2, 'two')");
    for (const store of [1, 2]) {
      await s.query(
        `INSERT INTO products (id, store_id, name, price) SELECT i, ${store}, E'p''' || i || E'\\n', i * 1.000001 FROM generate_series(1, 5) i`,
      );
      await s.query(
        `INSERT INTO orders (id, store_id, product_id, qty) SELECT i, ${store}, 1 + i % 5, i * ${store} FROM generate_series(1, ${orders}) i`,
      );
    }
  });
}

async function snapshot(db: TestDatabase, store: number): Promise<Record<string, string[]>> {
  return plain(db, async (s) => {
    const out: Record<string, string[]> = {};
    for (const [table, col] of [
      ['stores', 'id'],
      ['products', 'store_id'],
      ['orders', 'store_id'],
    ] as const) {
      const rows = await s.query<{ r: string }>(`SELECT t::text AS r FROM ${table} t WHERE ${col} = ${store} ORDER BY t::text`, {
        type: QueryTypes.SELECT,
      });
      out[table] = rows.map((r) => r.r);
    }
    return out;
  });
}

const EMPTY = { stores: [], products: [], orders: [] };

test.before(async (t) => {
  const db = await createTestDatabase();
  const made = (require(app) as (url: string) => Sequelize)(db.url);
  await made.sync({ force: true });
  await made.close();
  t.context = { db };
});

test.after.always(async (t) => {
  await t.context.db?.drop();
});

test.serial('export → delete → import from the command line restores identical rows; the other tenant is untouched', async (t) => {
  const { db } = t.context;
  await seed(db);
  const [one, two] = [await snapshot(db, 1), await snapshot(db, 2)];
  const dir = mkdtempSync(join(tmpdir(), 'smt-cli-'));
  try {
    const exported = await run(db, ['export', app, '1', '--to', join(dir, 'one'), '--batch-size', '7']);
    t.is(exported.code, 0, exported.stderr);
    t.regex(exported.stderr, /^exported stores: 1 rows \(1 in all\)$/m, 'the first progress line at once');
    t.regex(exported.stderr, /tenant 1 exported from .* to .*one:\n {2}stores {4}1\n {2}products {2}5\n {2}orders {4}20\n$/);
    const manifest = JSON.parse(readFileSync(join(dir, 'one', 'manifest.json'), 'utf8')) as {
      tables: Array<{ table: string; rows: number }>;
    };
    t.deepEqual(
      manifest.tables.map((x) => [x.table, x.rows]),
      [
        ['stores', 1],
        ['products', 5],
        ['orders', 20],
      ],
    );
    // the stream format to stdout, kept in a file: what import reads back too
    const streamed = await run(db, ['export', app, '1', '--to', '-']);
    t.is(streamed.code, 0, streamed.stderr);
    const lines = streamed.stdout.trim().split('\n');
    t.regex(lines[0] ?? '', /^\["export",/);
    t.regex(lines.at(-1) ?? '', /^\["manifest",/);
    t.is(lines.filter((l) => l.startsWith('["row",')).length, 26);

    const dry = await run(db, ['delete', app, '1', '--dry-run']);
    t.is(dry.code, 0, dry.stderr);
    t.regex(
      dry.stdout,
      /tenant 1 would lose .*: 26 rows \(dry run: nothing deleted\)\n {2}orders {4}20\n {2}products {2}5\n {2}stores {4}1\n/,
    );
    t.deepEqual(await snapshot(db, 1), one);

    const deleted = await run(db, ['delete', app, '1', '--confirm', '01', '--json']);
    t.is(deleted.code, 0, deleted.stderr);
    t.like(JSON.parse(deleted.stdout), { dryRun: false, total: 26 });
    t.deepEqual(await snapshot(db, 1), EMPTY);
    t.deepEqual(await snapshot(db, 2), two);

    // pinned to another tenant: refused (exit 1), nothing written
    const pinned = await run(db, ['import', app, join(dir, 'one'), '--tenant', '2']);
    t.is(pinned.code, 1, pinned.stderr);
    t.regex(pinned.stderr, /the export is of tenant 1, and this import may write tenant 2 only/);
    t.deepEqual(await snapshot(db, 1), EMPTY);
    const imported = await run(db, ['import', app, join(dir, 'one'), '--tenant', '1']);
    t.is(imported.code, 0, imported.stderr);
    t.regex(imported.stdout, /tenant 1 imported into /);
    t.deepEqual(await snapshot(db, 1), one);

    // once more through the streamed file
    t.is((await run(db, ['delete', app, '1', '--confirm', '1'])).code, 0);
    const file = join(dir, 'one.jsonl');
    require('node:fs').writeFileSync(file, streamed.stdout);
    const fromFile = await run(db, ['import', app, file, '--batch-size', '3']);
    t.is(fromFile.code, 0, fromFile.stderr);
    t.deepEqual(await snapshot(db, 1), one);
    t.deepEqual(await snapshot(db, 2), two);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('copy from the command line: a verified new tenant, --set on the copied rows; a second copy is refused (exit 1)', async (t) => {
  const { db } = t.context;
  await seed(db);
  const one = await snapshot(db, 1);
  const copied = await run(db, ['copy', app, '1', '3', '--confirm', '3', '--set', 'stores.name=three']);
  t.is(copied.code, 0, copied.stderr);
  t.regex(copied.stdout, /tenant 1 copied to 3 in .*: 26 rows, verified/);
  const three = await snapshot(db, 3);
  t.deepEqual(three.stores, ['(3,three)']);
  t.deepEqual(three.orders, (one.orders ?? []).map((r) => r.replace(/^\((\d+),1,/, '($1,3,')).sort());
  const again = await run(db, ['copy', app, '1', '3', '--confirm', '3']);
  t.is(again.code, 1);
  t.regex(
    again.stderr,
    /^sequelize-multitenant copy: copyTenant: tenant 3 already has rows in stores: copyTenant makes a new tenant; nothing was copied/,
  );
  t.is(again.stderr.trim().split('\n').length, 1, 'one line, no stack');
  t.deepEqual(await snapshot(db, 1), one);
});

test.serial('Ctrl-C stops a delete between two batches (exit 130, what was deleted said); run again, it finishes', async (t) => {
  const { db } = t.context;
  await seed(db, 3000);
  const two = await snapshot(db, 2);
  const child: ChildProcess = spawn(process.execPath, [cli, 'delete', app, '1', '--confirm', '1', '--batch-size', '5'], {
    env: { ...process.env, DATABASE_URL: db.url },
  });
  let stderr = '';
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => {
    child.stderr?.on('data', (d: Buffer) => {
      const first = stderr === '';
      stderr += d.toString();
      if (first) child.kill('SIGINT');
    });
    child.on('close', resolve);
  });
  t.is(code, 130, stderr);
  t.regex(stderr, /SIGINT, stopping after the current statement/);
  const [, rows] =
    /sequelize-multitenant delete: deleteTenant: interrupted after (\d+) row\(s\) \(orders \d+\): the batches deleted so far are committed/.exec(
      stderr,
    ) ?? [];
  t.truthy(rows, stderr);
  t.is(stdout, '');
  const left = await snapshot(db, 1);
  t.is(left.orders?.length, 3000 - Number(rows));
  t.true((left.orders?.length ?? 0) > 0, 'stopped before the end');
  t.is(left.stores?.length, 1);
  const rest = await run(db, ['delete', app, '1', '--confirm', '1', '--json']);
  t.is(rest.code, 0, rest.stderr);
  t.is((JSON.parse(rest.stdout) as { total: number }).total, 3000 - Number(rows) + 5 + 1);
  t.deepEqual(await snapshot(db, 1), EMPTY);
  t.deepEqual(await snapshot(db, 2), two);
});

test.serial('bad command lines: one sentence, exit 2, nothing changed; a tenant that does not fit or does not exist: exit 1', async (t) => {
  const { db } = t.context;
  await seed(db);
  const one = await snapshot(db, 1);
  const usage: Array<[string[], RegExp]> = [
    [['delete', app, '1'], /delete removes every row of tenant 1: add --confirm 1 \(or --dry-run\)/],
    [['copy', app, '1', '3'], /copy creates tenant 3: add --confirm 3/],
    [['export', app, '1'], /export needs --to <dir> \(or --to - for stdout\)/],
    [['export', app, '1', '--to', '-', '--json'], /--json prints to stdout, where --to - writes the export/],
    [['delete', app, '1', '--confirm', '1', '--batch-size', '0'], /--batch-size needs a positive integer, got 0/],
    [['delete', app, '1', '--confirm', '1', '--to', 'x'], /--to is not an option of delete/],
    [['delete', app, '1', '2', '--confirm', '1'], /delete takes <tenant> after the module, got 1 2/],
    [['delete', app, '1', '--confirm', '1', '--confirm', '2'], /--confirm is given twice/],
    [['export', app, '1', '--to', 'x', '--model', 'Nope'], /--model Nope: the instance has no such model \(it has Store, Product, Order\)/],
    [['copy', app, '1', '3', '--confirm', '3', '--set', 'stores'], /--set needs <table>\.<column>=<value>, got stores/],
    [['import', app, join(tmpdir(), 'nowhere-smt')], /nowhere-smt does not exist/],
    [
      ['delete', app, '1', '--confirm', '1', '--batch-size', '99999999999999999999'],
      /--batch-size needs a positive integer, got 99999999999999999999/,
    ],
    [['export', app, '1', '--to', 'x', '--model', 'constructor'], /--model constructor: the instance has no such model/],
    [['export', app, '1', '--to', 'x', '--model', '__proto__'], /--model __proto__: the instance has no such model/],
    [['copy', app, '1', '3', '--confirm', '3', '--set', '__proto__.stores=1'], /--set __proto__\.stores: no table or column is named so/],
    [['export', app, '1', '--to', 'x', '--tenant', '1'], /--tenant is not an option of export/],
    [
      ['delete', join(root, 'test', 'fixtures', 'doctor', 'app.cjs'), '1', '--confirm', '1'],
      /has no multitenant\(\): install it in the module/,
    ],
  ];
  for (const [args, message] of usage) {
    const r = await run(db, args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line, no stack`);
  }
  const refused: Array<[string[], RegExp]> = [
    [['delete', app, 'abc', '--confirm', 'abc'], /InvalidTenant|does not fit|not a valid/i],
    [['delete', app, '1', '--confirm', '2'], /pass \{ confirm: "1" \}/],
    [['export', app, '9', '--to', join(tmpdir(), 'smt-none')], /tenant 9 does not exist: nothing was exported/],
    // a negative id is a tenant, not an option (and here one that does not exist)
    [['export', app, '-1', '--to', join(tmpdir(), 'smt-none')], /tenant -1 does not exist: nothing was exported/],
  ];
  for (const [args, message] of refused) {
    const r = await run(db, args);
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
  }
  t.deepEqual(await snapshot(db, 1), one);
  const help = await run(db, ['delete', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /^usage: sequelize-multitenant export <module> <tenant> --to <dir\|->/);
  t.regex(help.stdout, /Exit codes: 0 done, 1 refused or failed, 2 a usage or loading error, 130 stopped\./);
});
