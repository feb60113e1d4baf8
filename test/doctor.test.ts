// `sequelize-multitenant doctor`: an existing schema made before tenants (plain id keys, single-column
// foreign keys, a unique index without the tenant column) is reported with the exact fixes and a
// non-zero exit code; the migration it writes fixes it (the doctor then exits 0) — on PostgreSQL, and
// on Citus (CITUS_URL) where the migration also distributes the tables, parents first.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { QueryTypes, Sequelize } from 'sequelize';
import { createTestDatabase, onCitus } from './helpers/db';

const run = promisify(execFile);
const root = join(__dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const app = join(root, 'test', 'fixtures', 'doctor', 'app.cjs');

async function doctor(url: string, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return run(process.execPath, [cli, 'doctor', app, ...args], { env: { ...process.env, DATABASE_URL: url } }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: `${e.stdout}${e.stderr}` }),
  );
}

const UNFIT = [
  'CREATE TABLE stores (id bigserial PRIMARY KEY, name text)',
  'CREATE TABLE products (id bigserial PRIMARY KEY, store_id bigint NOT NULL REFERENCES stores (id), sku text)',
  'CREATE UNIQUE INDEX products_sku ON products (sku)',
  'CREATE TABLE purchases (id bigserial PRIMARY KEY, store_id bigint NOT NULL, product_id bigint REFERENCES products (id))',
  `INSERT INTO stores (id, name) VALUES (1, 'a'), (2, 'b')`,
  `INSERT INTO products (id, store_id, sku) VALUES (1, 1, 'x'), (2, 2, 'y')`,
  'INSERT INTO purchases (id, store_id, product_id) VALUES (1, 1, 1), (2, 2, 2)',
];

test.serial('an unfit schema: every problem with its fix, exit code 1; the written migration fixes it, exit code 0', async (t) => {
  const db = await createTestDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  const dir = mkdtempSync(join(tmpdir(), 'doctor-'));
  try {
    for (const sql of UNFIT) await sequelize.query(sql);
    await sequelize.close();
    const before = await doctor(db.url, '--migration', dir);
    t.is(before.code, 1, before.stdout);
    t.log(before.stdout);
    for (const expected of [
      onCitus
        ? /✗ stores \(Store: tenant table, tenant column id; citus: not distributed/
        : /✓ stores \(Store: tenant table, tenant column id/,
      ...(onCitus
        ? [
            /fix: SELECT create_distributed_table\('"stores"', 'id', colocate_with => 'none'\)/,
            /fix: SELECT create_distributed_table\('"products"', 'store_id', colocate_with => '"stores"'\)/,
          ]
        : []),
      /✗ products \(Product: tenant-owned, tenant column store_id/,
      /blocks: primary key \(id\) does not include the tenant column store_id/,
      /fix: ALTER TABLE "products" ADD PRIMARY KEY \("store_id", "id"\)/,
      /blocks: unique index products_sku \(sku\) does not include the tenant column store_id/,
      /fix: ALTER TABLE "products" ADD CONSTRAINT "products_store_id_sku_key" UNIQUE \("store_id", "sku"\)/,
      /blocks: foreign key purchases_product_id_fkey \(product_id\) → products \(id\) does not carry the tenant column/,
      /fix: ALTER TABLE "purchases" ADD CONSTRAINT "purchases_store_id_product_id_fkey" FOREIGN KEY \("store_id", "product_id"\) REFERENCES "products" \("store_id", "id"\)/,
      /problems block scale-out\./,
    ])
      t.regex(before.stdout, expected);
    t.notRegex(before.stdout, /products_store_id_fkey/, 'a key to the tenant table itself stays single-column');
    const [file] = readdirSync(dir);
    if (!file) return t.fail('no migration written');
    // the migration as umzug runs it
    const fixer = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    try {
      const migration = require(join(dir, file)) as { up(arg: unknown): Promise<void> };
      await migration.up({ context: fixer.getQueryInterface() });
      // the database itself now refuses a purchase of another store's product
      await t.throwsAsync(() => fixer.query('INSERT INTO purchases (id, store_id, product_id) VALUES (3, 1, 2)'), {
        message: /foreign key/,
      });
      const rows = await fixer.query('SELECT count(*)::int AS n FROM purchases', { type: QueryTypes.SELECT });
      t.deepEqual(rows, [{ n: 2 }]);
    } finally {
      await fixer.close();
    }
    const after = await doctor(db.url);
    t.is(after.code, 0, after.stdout);
    t.regex(after.stdout, /Nothing blocks scale-out\./);
    if (onCitus) t.regex(after.stdout, /✓ purchases \(Purchase: tenant-owned, tenant column store_id; citus: hash, colocated/);
    const json = await doctor(db.url, '--json');
    const parsed = JSON.parse(json.stdout) as { tables: Array<{ table: string; problems: unknown[] }> };
    t.deepEqual(
      parsed.tables.map((x) => [x.table, x.problems.length]),
      [
        ['stores', 0],
        ['products', 0],
        ['purchases', 0],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await sequelize.close().catch(() => undefined);
    await db.drop();
  }
});

test('usage errors exit 2 and say how to call it', async (t) => {
  const bad = await run(process.execPath, [cli, 'doctr'], {}).catch((e: { code: number; stdout: string }) => e);
  t.is((bad as { code: number }).code, 2);
  t.regex((bad as { stdout: string }).stdout, /unknown command doctr[\s\S]*usage: sequelize-multitenant doctor <module>/);
  const none = await run(process.execPath, [cli, 'doctor'], {}).catch((e: { code: number; stdout: string }) => e);
  t.is((none as { code: number }).code, 2);
  t.regex((none as { stdout: string }).stdout, /which module holds the models\?/);
});

const EDGES = [
  'CREATE TABLE stores (id bigserial PRIMARY KEY)',
  'CREATE TABLE products (id bigint PRIMARY KEY, store_id bigint, sku text)',
  'CREATE UNIQUE INDEX products_lower_sku ON products (lower(sku))',
  'CREATE UNIQUE INDEX products_live_sku ON products (sku) WHERE sku IS NOT NULL',
  'CREATE TABLE lines (id bigint PRIMARY KEY, store_id bigint NOT NULL, product_id bigint REFERENCES products (id) ON DELETE CASCADE ON UPDATE CASCADE)',
  'CREATE TABLE audits (id bigint PRIMARY KEY, product_id bigint REFERENCES products (id))',
  'INSERT INTO stores (id) VALUES (1), (2)',
  `INSERT INTO products (id, store_id, sku) VALUES (1, 1, 'a'), (2, 2, 'b'), (3, NULL, 'c')`,
  'INSERT INTO lines (id, store_id, product_id) VALUES (1, 1, 1), (2, 1, 2)',
];

(onCitus ? test.skip : test.serial)(
  'the review of the doctor: expression and partial unique indexes, key actions, NULL tenants, crossing rows, a global table keyed to a tenant table, an ES module with top-level await',
  async (t) => {
    const db = await createTestDatabase();
    const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    const dir = mkdtempSync(join(tmpdir(), 'doctor-'));
    const edges = join(root, 'test', 'fixtures', 'doctor', 'edges.mjs');
    try {
      for (const sql of EDGES) await sequelize.query(sql);
      await sequelize.close();
      const report = await run(process.execPath, [cli, 'doctor', edges, '--migration', dir], {
        env: { ...process.env, DATABASE_URL: db.url },
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);
      const out = (report as { stdout: string }).stdout;
      t.is((report as { code?: number }).code, 1, out);
      for (const expected of [
        /unique index products_live_sku \(an expression or a WHERE\) does not include the tenant column store_id: .*rebuild it by hand .*WHERE \(sku IS NOT NULL\)/,
        /unique index products_lower_sku \(an expression or a WHERE\) .*lower\(sku\)/,
        /1 row\(s\) have no tenant \(store_id IS NULL\)/,
        /1 row\(s\) point through lines_product_id_fkey at another tenant's row in products/,
        /ON DELETE CASCADE ON UPDATE CASCADE/,
        /foreign key audits_product_id_fkey of this global table → the tenant table products: .*make this a tenant table/,
      ])
        t.regex(out, expected);
      t.notRegex(out, /UNIQUE \("store_id"\)/, 'never a unique key of the tenant column alone');
      const [file] = readdirSync(dir);
      if (!file) return t.fail('no migration written');
      const source = readFileSync(join(dir, file), 'utf8');
      t.false(source.includes('lower'), 'an expression index is not rebuilt by a generated statement');
      // the migration fails (the NULL tenant, the crossing row) — and changes nothing: one transaction
      const fixer = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
      try {
        const migration = require(join(dir, file)) as { up(arg: unknown): Promise<void> };
        await t.throwsAsync(() => migration.up(fixer.getQueryInterface()));
        const keys = await fixer.query(`SELECT conname FROM pg_constraint WHERE conrelid = 'lines'::regclass AND contype = 'f'`, {
          type: QueryTypes.SELECT,
        });
        t.deepEqual(keys, [{ conname: 'lines_product_id_fkey' }]);
      } finally {
        await fixer.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await sequelize.close().catch(() => undefined);
      await db.drop();
    }
  },
);

(onCitus ? test.serial : test.skip)(
  'Citus: a key to a global table that becomes a reference table is dropped before distribution and added back after',
  async (t) => {
    const db = await createTestDatabase();
    const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    const dir = mkdtempSync(join(tmpdir(), 'doctor-'));
    const models = join(root, 'test', 'fixtures', 'doctor', 'reference.cjs');
    const doctorOf = (...args: string[]) =>
      run(process.execPath, [cli, 'doctor', models, ...args], { env: { ...process.env, DATABASE_URL: db.url } }).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
    try {
      for (const sql of [
        'CREATE TABLE stores (id bigserial PRIMARY KEY)',
        'CREATE TABLE countries (code varchar(2) PRIMARY KEY)',
        'CREATE TABLE products (id bigint, store_id bigint REFERENCES stores (id), country_code varchar(2) REFERENCES countries (code), PRIMARY KEY (store_id, id))',
      ])
        await sequelize.query(sql);
      await sequelize.close();
      const before = await doctorOf('--migration', dir);
      t.is(before.code, 1, before.stdout);
      t.regex(before.stdout, /foreign key products_country_code_fkey → countries, which becomes a reference table/);
      const [file] = readdirSync(dir);
      if (!file) return t.fail('no migration written');
      const fixer = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
      try {
        await (require(join(dir, file)) as { up(arg: unknown): Promise<void> }).up({ context: fixer.getQueryInterface() });
        const keys = await fixer.query(
          `SELECT conname FROM pg_constraint WHERE conrelid = 'products'::regclass AND contype = 'f' ORDER BY 1`,
          {
            type: QueryTypes.SELECT,
          },
        );
        t.deepEqual(keys, [{ conname: 'products_country_code_fkey' }, { conname: 'products_store_id_fkey' }]);
      } finally {
        await fixer.close();
      }
      const after = await doctorOf();
      t.is(after.code, 0, after.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await sequelize.close().catch(() => undefined);
      await db.drop();
    }
  },
);
