// The doctor in the applications it meets: an ES-module app ("type": "module") gets its migration as an ES
// module, a CommonJS app as CommonJS, a folder of .cjs / .mjs migrations its own extension — and each
// migration is run by the real umzug 3 and the real sequelize-cli, after which the doctor exits 0. A
// TypeScript app module loads through tsx; without tsx, or without DATABASE_URL, the doctor says so in
// one sentence; --help prints the usage.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { Sequelize } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import { createTestDatabase, onCitus } from './helpers/db';

const run = promisify(execFile);
const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const sequelizeCli = join(root, 'node_modules', 'sequelize-cli', 'lib', 'sequelize');
const fixtureApp = join(root, 'test', 'fixtures', 'doctor', 'app.cjs');

const UNFIT = [
  'CREATE TABLE stores (id bigserial PRIMARY KEY, name text)',
  'CREATE TABLE products (id bigserial PRIMARY KEY, store_id bigint NOT NULL REFERENCES stores (id), sku text)',
  'CREATE TABLE purchases (id bigserial PRIMARY KEY, store_id bigint NOT NULL, product_id bigint REFERENCES products (id))',
];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function doctor(args: string[], env: Record<string, string | undefined>, cwd = root): Promise<Result> {
  return run(process.execPath, [cli, ...args], { cwd, env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** An application folder inside this checkout (its node_modules resolve from there), with a package.json. */
function appFolder(type: 'module' | 'commonjs'): string {
  mkdirSync(join(root, '.docs-check'), { recursive: true });
  const dir = mkdtempSync(join(root, '.docs-check', `doctor-${type}-`));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type }));
  copyFileSync(fixtureApp, join(dir, 'models.cjs'));
  return dir;
}

async function unfitDatabase() {
  const db = await createTestDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  for (const sql of UNFIT) await sequelize.query(sql);
  await sequelize.close();
  return db;
}

/** Runs the folder's migrations with umzug 3, as an application does (glob, SequelizeStorage, context: the query interface). */
async function migrateWithUmzug(url: string, migrations: string): Promise<string[]> {
  const sequelize = new Sequelize(url, { logging: false, pool: { max: 1 } });
  try {
    const umzug = new Umzug({
      migrations: { glob: join(migrations, '*.{js,cjs,mjs}') },
      context: sequelize.getQueryInterface(),
      storage: new SequelizeStorage({ sequelize }),
      logger: undefined,
    });
    return (await umzug.up()).map((m) => m.name);
  } finally {
    await sequelize.close();
  }
}

/** Runs the folder's migrations with sequelize-cli's db:migrate. */
async function migrateWithSequelizeCli(url: string, migrations: string, cwd: string): Promise<string> {
  const { stdout } = await run(process.execPath, [sequelizeCli, 'db:migrate', '--url', url, '--migrations-path', migrations], { cwd });
  return stdout;
}

const cases: Array<{ title: string; type: 'module' | 'commonjs'; existing?: string; format?: string; file: RegExp; esm: boolean }> = [
  { title: 'an ES-module app', type: 'module', file: /-multitenant-doctor\.js$/, esm: true },
  { title: 'a CommonJS app', type: 'commonjs', file: /-multitenant-doctor\.js$/, esm: false },
  { title: 'an ES-module app whose migrations are .cjs', type: 'module', existing: '.cjs', file: /\.cjs$/, esm: false },
  { title: 'an ES-module app, --format cjs', type: 'module', format: 'cjs', file: /\.cjs$/, esm: false },
  { title: 'a CommonJS app, --format esm', type: 'commonjs', format: 'esm', file: /\.mjs$/, esm: true },
];

for (const c of cases) {
  for (const tool of ['umzug', 'sequelize-cli'] as const) {
    // sequelize-cli finds .js, .cjs and .ts migrations only (not .mjs)
    const runs = !(tool === 'sequelize-cli' && c.file.source.includes('mjs'));
    (runs && !onCitus ? test.serial : test.skip)(
      `${c.title}: the migration is written in its module system and ${tool} runs it`,
      async (t) => {
        const app = appFolder(c.type);
        const migrations = join(app, 'migrations');
        const db = await unfitDatabase();
        try {
          mkdirSync(migrations);
          if (c.existing) {
            // a migration of the application's own, already run
            writeFileSync(join(migrations, `20200101000000-init${c.existing}`), 'module.exports = { async up() {}, async down() {} };\n');
          }
          const before = await doctor(
            ['doctor', join(app, 'models.cjs'), '--migration', migrations, ...(c.format ? ['--format', c.format] : [])],
            { DATABASE_URL: db.url },
            app,
          );
          t.is(before.code, 1, before.stdout + before.stderr);
          const written = readdirSync(migrations).filter((f) => f.includes('multitenant-doctor'));
          t.is(written.length, 1);
          const file = written[0] as string;
          t.regex(file, c.file);
          const source = readFileSync(join(migrations, file), 'utf8');
          t.is(/^export async function up/m.test(source), c.esm, 'ES module syntax when, and only when, the file is one');
          t.is(/^exports\.up = async function up/m.test(source), !c.esm);
          if (tool === 'umzug') {
            const ran = await migrateWithUmzug(db.url, migrations);
            t.true(ran.includes(file), ran.join(', '));
          } else {
            const out = await migrateWithSequelizeCli(db.url, migrations, app);
            t.regex(out, new RegExp(`== ${file.replace(/\.[cm]?js$/, '')}: migrated`));
          }
          const after = await doctor(['doctor', join(app, 'models.cjs')], { DATABASE_URL: db.url }, app);
          t.is(after.code, 0, after.stdout);
          t.regex(after.stdout, /Nothing blocks scale-out\./);
        } finally {
          rmSync(app, { recursive: true, force: true });
          await db.drop();
        }
      },
    );
  }
}

test.serial('a TypeScript app module loads through tsx; without tsx the doctor says how', async (t) => {
  const app = appFolder('module');
  const outside = mkdtempSync(join(tmpdir(), 'doctor-ts-'));
  const db = await createTestDatabase();
  try {
    const models = `import { DataTypes, Sequelize } from 'sequelize';
const url: string = process.env.DATABASE_URL ?? '';
export const sequelize = new Sequelize(url, { logging: false });
sequelize.define('Store', { id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true } }, { tableName: 'stores', tenantKey: 'id', timestamps: false });
`;
    writeFileSync(join(app, 'db.ts'), models);
    const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    await s.query('CREATE TABLE stores (id bigserial PRIMARY KEY)');
    // (on Citus the tenant table must be distributed for the doctor to find nothing)
    if (onCitus) await s.query(`SELECT create_distributed_table('stores', 'id', colocate_with => 'none')`);
    await s.close();
    const ok = await doctor(['doctor', join(app, 'db.ts')], { DATABASE_URL: db.url }, app);
    t.is(ok.code, 0, ok.stdout + ok.stderr);
    t.regex(ok.stdout, /✓ stores \(Store: tenant table/);
    // an application without tsx (a folder whose node_modules has none)
    writeFileSync(join(outside, 'db.ts'), models);
    const none = await doctor(['doctor', join(outside, 'db.ts')], { DATABASE_URL: db.url }, outside);
    t.is(none.code, 2);
    t.regex(
      none.stderr,
      /db\.ts is TypeScript: install tsx in the application \(npm install -D tsx\) and run sequelize-multitenant doctor again/,
    );
    t.is(none.stderr.trim().split('\n').length, 1, 'one line, no stack');
  } finally {
    rmSync(app, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
    await db.drop();
  }
});

test('--help prints the usage and exits 0; no DATABASE_URL, a missing file, a bad --format: one sentence, exit 2', async (t) => {
  for (const help of [['--help'], ['doctor', '--help'], ['-h']]) {
    const r = await doctor(help, {});
    t.is(r.code, 0, help.join(' '));
    t.regex(r.stdout, /^usage: sequelize-multitenant doctor <module> \[--migration <dir>\] \[--format esm\|cjs\] \[--json\]/);
    t.regex(r.stdout, /Exit codes: 0 nothing blocks scale-out, 1 something does, 2 a usage or loading error\./);
  }
  const noUrl = await doctor(['doctor', fixtureApp], { DATABASE_URL: undefined });
  t.is(noUrl.code, 2);
  t.regex(
    noUrl.stderr,
    /^sequelize-multitenant doctor: DATABASE_URL is not set, and .*app\.cjs exports a function that makes the Sequelize instance from it: DATABASE_URL=postgres:\/\/\.\.\. npx sequelize-multitenant doctor /,
  );
  t.is(noUrl.stderr.trim().split('\n').length, 1, 'one line, no stack');
  const missing = await doctor(['doctor', 'nowhere.js'], { DATABASE_URL: 'postgres://x' });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nowhere\.js does not exist/);
  const format = await doctor(['doctor', fixtureApp, '--migration', 'm', '--format', 'ts'], {});
  t.is(format.code, 2);
  t.regex(format.stdout, /--format needs esm or cjs, got ts/);
  const alone = await doctor(['doctor', fixtureApp, '--format', 'esm'], {});
  t.regex(alone.stdout, /--format applies to --migration <dir>/);
});
