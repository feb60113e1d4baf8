// Tenant lifecycle (#30): export → delete → import restores identical rows; the other tenant's rows stay
// byte for byte the same throughout; an interrupted delete run again finishes; bad input is refused with
// a named error and changes nothing. Two tenants share every primary key.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import anyTest, { type TestFn } from 'ava';
import { DataTypes, type Model, type ModelStatic, QueryTypes, Sequelize } from 'sequelize';
import { InvalidTenantError, isolateTenant, LifecycleInterruptedError, MultitenantError, multitenant, withTenant } from '../src/index';
import { copyTenant } from '../src/lifecycle/copy';
import { deleteTenant } from '../src/lifecycle/delete';
import { exportTenant, type TenantManifest } from '../src/lifecycle/export';
import { importTenant } from '../src/lifecycle/import';
import { createTestDatabase, onCitus, onEmbedded, type TestDatabase } from './helpers/db';

// biome-ignore lint/suspicious/noExplicitAny: test models
type M = ModelStatic<Model<any, any>>;
interface Ctx {
  db: TestDatabase;
  sequelize: Sequelize;
  /** Without the library: seeds and reads back every row (raw SQL the auditor, when on, would refuse). */
  plain: Sequelize;
  sql: string[];
  Store: M;
  Product: M;
  Order: M;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase();
  const sql: string[] = [];
  const sequelize = new Sequelize(db.url, { logging: (s) => sql.push(s.replace(/^Executing \([^)]*\): /, '')), pool: { max: 1 } });
  multitenant(sequelize, { notice: false });
  const key = () => ({ type: DataTypes.INTEGER, primaryKey: true });
  const Store = sequelize.define(
    'Store',
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, name: DataTypes.TEXT },
    {
      tableName: 'stores',
      timestamps: false,
      tenantKey: 'id',
    },
  );
  const Product = sequelize.define(
    'Product',
    {
      id: key(),
      store_id: key(),
      name: DataTypes.TEXT,
      price: DataTypes.DECIMAL(20, 6),
      tags: DataTypes.JSONB,
      photo: DataTypes.BLOB,
      at: DataTypes.DATE,
    },
    { tableName: 'products', timestamps: false, tenantKey: 'store_id' },
  );
  // declared before Product on purpose: the order comes from the foreign keys, not from definition
  const Order = sequelize.define(
    'Order',
    { id: key(), store_id: key(), product_id: DataTypes.INTEGER, qty: DataTypes.INTEGER },
    {
      tableName: 'orders',
      timestamps: false,
      tenantKey: 'store_id',
    },
  );
  Product.belongsTo(Store, { foreignKey: 'store_id' });
  Order.belongsTo(Store, { foreignKey: 'store_id' });
  await sequelize.sync({ force: true });
  // (the embedded PGlite serves one connection: there the library's instance sends the raw SQL too — the
  // auditor's run, which would refuse it, is on the server)
  const plain = db.kind === 'embedded' ? sequelize : new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  await plain.query(
    'ALTER TABLE orders ADD CONSTRAINT orders_product_fk FOREIGN KEY (product_id, store_id) REFERENCES products (id, store_id)',
  );
  t.context = { db, sequelize, plain, sql, Store, Product, Order };
});

test.after.always(async (t) => {
  await t.context.sequelize?.close();
  if (t.context.plain !== t.context.sequelize) await t.context.plain?.close();
  await t.context.db?.drop();
});

/** Two tenants with the same keys, values of every awkward kind. */
async function seed(s: Sequelize, rows = 5): Promise<void> {
  await s.query('TRUNCATE orders, products, stores');
  await s.query("INSERT INTO stores (id, name) VALUES (1, 'one'), (2, 'two')");
  for (const store of [1, 2]) {
    await s.query(
      `INSERT INTO products (id, store_id, name, price, tags, photo, at)
       SELECT i, ${store}, CASE WHEN i = 1 THEN E'quote '' newline \\n tab \\t é 😀' WHEN i = 2 THEN NULL ELSE 'p' || i END,
              i * 1.123456 + ${store}, jsonb_build_object('i', i, 'nested', jsonb_build_array(1, 'x', null)),
              decode('00ff' || lpad(to_hex(i), 4, '0'), 'hex'), timestamptz '2026-01-02 03:04:05.678901+00' + i * interval '1 day'
         FROM generate_series(1, ${rows}) i`,
    );
    await s.query(
      `INSERT INTO orders (id, store_id, product_id, qty) SELECT i, ${store}, 1 + i % ${rows}, i * ${store} FROM generate_series(1, ${rows * 2}) i`,
    );
  }
}

/** Every row of every table as PostgreSQL's text of it, in key order (unscoped, raw). */
async function snapshot(s: Sequelize, store?: number): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, col] of [
    ['stores', 'id'],
    ['products', 'store_id'],
    ['orders', 'store_id'],
  ] as const) {
    const where = store === undefined ? '' : ` WHERE ${col} = ${store}`;
    const rows = await s.query<{ r: string }>(`SELECT t::text AS r FROM ${table} t${where} ORDER BY t::text`, { type: QueryTypes.SELECT });
    out[table] = rows.map((r) => r.r);
  }
  return out;
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'smt-lifecycle-'));

test.serial('export to a directory: the tenant rows only, parents before children, counts and checksums in the manifest', async (t) => {
  const { sequelize, plain, sql } = t.context;
  await seed(plain, 7);
  const dir = tempDir();
  sql.length = 0;
  const progress: number[] = [];
  const manifest = await exportTenant(sequelize, 1, { to: dir, batchSize: 3, onProgress: (p) => progress.push(p.total) });
  t.deepEqual(
    manifest.tables.map((x) => [x.table, x.rows]),
    [
      ['stores', 1],
      ['products', 7],
      ['orders', 14],
    ],
  );
  t.is(manifest.tenant, 1);
  t.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'orders.jsonl', 'products.jsonl', 'stores.jsonl']);
  const written = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as TenantManifest;
  t.deepEqual(written, JSON.parse(JSON.stringify(manifest)));
  const products = readFileSync(join(dir, 'products.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(
    products.map((p) => p.store_id),
    Array(7).fill(1),
  );
  t.is(products[0]?.name, "quote ' newline \n tab \t é 😀");
  t.is(products[0]?.photo, '\\x00ff0001');
  t.deepEqual(products[0]?.tags, { i: 1, nested: [1, 'x', null] });
  t.is(progress.at(-1), 22);
  // every statement about rows names the tenant column: one shard's statements on Citus
  const reads = sql.filter((s) => /FROM "(stores|products|orders)"/.test(s));
  t.true(reads.length >= 7, reads.join('\n'));
  for (const s of reads) t.regex(s, /WHERE (\w+\.)?"(id|store_id)" = \$1/);
  rmSync(dir, { recursive: true });
});

for (const via of ['directory', 'stream'] as const) {
  test.serial(`export → delete → import through a ${via} restores identical rows; the other tenant is untouched throughout`, async (t) => {
    const { sequelize, plain } = t.context;
    await seed(plain, 9);
    const before = await snapshot(plain);
    const other = await snapshot(plain, 2);
    const dir = tempDir();
    let text = '';
    if (via === 'directory') await exportTenant(sequelize, 1, { to: dir, batchSize: 4 });
    else {
      const sink = new PassThrough();
      sink.on('data', (c: Buffer) => {
        text += c.toString('utf8');
      });
      await exportTenant(sequelize, 1, { to: sink, batchSize: 4 });
    }
    const deleted = await deleteTenant(sequelize, 1, { confirm: 1, batchSize: 5 });
    t.deepEqual(deleted.tables, [
      { table: 'orders', rows: 18 },
      { table: 'products', rows: 9 },
      { table: 'stores', rows: 1 },
    ]);
    t.deepEqual((await snapshot(plain, 1)).products, []);
    t.deepEqual(await snapshot(plain, 2), other);
    const manifest = await importTenant(sequelize, via === 'directory' ? dir : Readable.from([text]), { batchSize: 4 });
    t.is(manifest.tables.length, 3);
    t.deepEqual(await snapshot(plain), before);
    t.deepEqual(await snapshot(plain, 2), other);
    rmSync(dir, { recursive: true });
  });
}

test.serial(
  'deleteTenant: refused without the confirmation, or with another tenant as it; dryRun counts and deletes nothing',
  async (t) => {
    const { sequelize, plain } = t.context;
    await seed(plain, 4);
    const before = await snapshot(plain);
    for (const options of [{}, { confirm: 2 }, { confirm: [1, 2] }, { confirm: undefined }]) {
      const err = await t.throwsAsync(deleteTenant(sequelize, 1, options as { confirm: unknown }), { instanceOf: MultitenantError });
      t.regex(err?.message ?? '', /confirm/);
      t.is(err?.operation, 'deleteTenant');
    }
    const dry = await deleteTenant(sequelize, '01', { confirm: 1, dryRun: true });
    t.deepEqual(dry.tables, [
      { table: 'orders', rows: 8 },
      { table: 'products', rows: 4 },
      { table: 'stores', rows: 1 },
    ]);
    t.is(dry.total, 13);
    t.deepEqual(await snapshot(plain), before);
  },
);

test.serial('an interrupted delete leaves whole batches; run again, it finishes — no row of the other tenant is touched', async (t) => {
  const { sequelize, plain } = t.context;
  await seed(plain, 10);
  const other = await snapshot(plain, 2);
  let calls = 0;
  await t.throwsAsync(
    deleteTenant(sequelize, 1, {
      confirm: 1,
      batchSize: 3,
      onProgress: () => {
        calls++;
        if (calls === 3) throw new Error('killed');
      },
    }),
    { message: 'killed' },
  );
  const half = await snapshot(plain, 1);
  t.is(half.orders?.length, 20 - 9);
  t.is(half.stores?.length, 1);
  const done = await deleteTenant(sequelize, 1, { confirm: 1, batchSize: 3 });
  t.deepEqual(
    done.tables.map((x) => x.rows),
    [11, 10, 1],
  );
  t.deepEqual(await snapshot(plain, 1), { stores: [], products: [], orders: [] });
  t.deepEqual(await snapshot(plain, 2), other);
  // once more: nothing left, nothing to do
  t.is((await deleteTenant(sequelize, 1, { confirm: 1 })).total, 0);
});

test.serial(
  'stopped by its signal, each operation names what it did: a delete keeps its batches and a re-run finishes; an export has no manifest; an import and a copy keep nothing',
  async (t) => {
    const { sequelize, plain } = t.context;
    await seed(plain, 10);
    const other = await snapshot(plain, 2);
    const whole = await snapshot(plain, 1);
    const dir = tempDir();
    try {
      // export: stopped after its second page
      let stop = new AbortController();
      let pages = 0;
      const exported = await t.throwsAsync(
        exportTenant(sequelize, 1, { to: dir, batchSize: 4, signal: stop.signal, onProgress: () => ++pages === 2 && stop.abort() }),
        { instanceOf: LifecycleInterruptedError },
      );
      t.is(exported?.operation, 'exportTenant');
      t.deepEqual(exported?.done, [
        { table: 'stores', rows: 1 },
        { table: 'products', rows: 4 },
      ]);
      t.regex(exported?.message ?? '', /interrupted after 5 row\(s\) \(stores 1, products 4\): the export is incomplete/);
      t.false(readdirSync(dir).includes('manifest.json'));
      await t.throwsAsync(importTenant(sequelize, dir), { message: /no readable manifest\.json/ });
      // a whole export, for the import below
      rmSync(dir, { recursive: true, force: true });
      await exportTenant(sequelize, 1, { to: dir });

      // delete: stopped after its third batch, the batches done stay deleted
      stop = new AbortController();
      let batches = 0;
      const deleted = await t.throwsAsync(
        deleteTenant(sequelize, 1, { confirm: 1, batchSize: 3, signal: stop.signal, onProgress: () => ++batches === 3 && stop.abort() }),
        { instanceOf: LifecycleInterruptedError },
      );
      t.deepEqual(deleted?.done, [{ table: 'orders', rows: 9 }]);
      t.regex(deleted?.message ?? '', /run deleteTenant again to finish/);
      t.is((await snapshot(plain, 1)).orders?.length, 11);
      t.is((await deleteTenant(sequelize, 1, { confirm: 1, batchSize: 3 })).total, 11 + 10 + 1);
      t.deepEqual(await snapshot(plain, 1), { stores: [], products: [], orders: [] });

      // import: stopped before its second batch — rolled back
      stop = new AbortController();
      const imported = await t.throwsAsync(
        importTenant(sequelize, dir, { batchSize: 5, signal: stop.signal, onProgress: (p) => p.table === 'products' && stop.abort() }),
        { instanceOf: LifecycleInterruptedError },
      );
      t.regex(imported?.message ?? '', /rolled back, nothing was imported/);
      t.deepEqual(await snapshot(plain, 1), { stores: [], products: [], orders: [] });
      await importTenant(sequelize, dir);
      t.deepEqual(await snapshot(plain, 1), whole);

      // copy: stopped after its first table — rolled back
      stop = new AbortController();
      const copied = await t.throwsAsync(copyTenant(sequelize, 1, 3, { confirm: 3, signal: stop.signal, onProgress: () => stop.abort() }), {
        instanceOf: LifecycleInterruptedError,
      });
      t.deepEqual(copied?.done, [{ table: 'stores', rows: 1 }]);
      t.deepEqual(await snapshot(plain, 3), { stores: [], products: [], orders: [] });
      // an already aborted signal: nothing at all
      const aborted = AbortSignal.abort();
      await t.throwsAsync(deleteTenant(sequelize, 1, { confirm: 1, signal: aborted }), { instanceOf: LifecycleInterruptedError });
      t.deepEqual(await snapshot(plain, 1), whole);
      t.deepEqual(await snapshot(plain, 2), other);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.serial('importTenant refuses a changed export, a row of another tenant, and a tenant that has rows — and keeps nothing', async (t) => {
  const { sequelize, plain } = t.context;
  await seed(plain, 3);
  const dir = tempDir();
  await exportTenant(sequelize, 1, { to: dir });
  // into a tenant that still has its rows
  const exists = await t.throwsAsync(importTenant(sequelize, dir), { instanceOf: MultitenantError });
  t.regex(exists?.message ?? '', /already has rows/);
  await deleteTenant(sequelize, 1, { confirm: 1 });
  const file = join(dir, 'products.jsonl');
  const original = readFileSync(file, 'utf8');
  // a value changed: the checksum no longer matches
  writeFileSync(file, original.replace('"p3"', '"pX"'));
  const changed = await t.throwsAsync(importTenant(sequelize, dir), { instanceOf: MultitenantError });
  t.regex(changed?.message ?? '', /checksum differs/);
  t.deepEqual(await snapshot(plain, 1), { stores: [], products: [], orders: [] });
  // a row moved to tenant 2 (the checksum would catch it too: the tenant check comes first)
  writeFileSync(file, original.replace('"store_id":1', '"store_id":2'));
  const moved = await t.throwsAsync(importTenant(sequelize, dir), { instanceOf: MultitenantError });
  t.regex(moved?.message ?? '', /belongs to tenant 2/);
  // a row missing
  writeFileSync(file, original.split('\n').slice(1).join('\n'));
  const cut = await t.throwsAsync(importTenant(sequelize, dir), { instanceOf: MultitenantError });
  t.regex(cut?.message ?? '', /rows 2 of 3/);
  t.deepEqual(await snapshot(plain, 1), { stores: [], products: [], orders: [] });
  writeFileSync(file, original);
  await importTenant(sequelize, dir);
  t.is((await snapshot(plain, 1)).products?.length, 3);
  rmSync(dir, { recursive: true });
});

test.serial(
  'bad input: several tenants, a tenant that does not exist or does not fit, no destination, an instance without multitenant()',
  async (t) => {
    const { sequelize, plain } = t.context;
    await seed(plain, 2);
    const before = await snapshot(plain);
    const dir = tempDir();
    const several = await t.throwsAsync(exportTenant(sequelize, [1, 2], { to: dir }), { instanceOf: MultitenantError });
    t.regex(several?.message ?? '', /one tenant, got 2/);
    const missing = await t.throwsAsync(exportTenant(sequelize, 99, { to: dir }), { instanceOf: MultitenantError });
    t.regex(missing?.message ?? '', /tenant 99 does not exist/);
    t.deepEqual(readdirSync(dir), []);
    await t.throwsAsync(deleteTenant(sequelize, 'abc', { confirm: 'abc' }), { instanceOf: InvalidTenantError });
    await t.throwsAsync(exportTenant(sequelize, 1, {} as { to: string }), { instanceOf: MultitenantError, message: /needs \{ to \}/ });
    // an instance without multitenant() (refused before it connects)
    const bare = new Sequelize(t.context.db.url, { logging: false });
    await t.throwsAsync(deleteTenant(bare, 1, { confirm: 1 }), { instanceOf: MultitenantError, message: /multitenant\(\) installed/ });
    await bare.close();
    t.deepEqual(await snapshot(plain), before);
    rmSync(dir, { recursive: true });
  },
);

(onEmbedded() ? test.skip : test.serial)(
  'several tenant tables: refused without { model }; with it, only the tables of that tenant table (and a model it cannot place, refused) — a second instance: not on the embedded PGlite (one connection)',
  async (t) => {
    const s = new Sequelize(t.context.db.url, { logging: false, pool: { max: 1 } });
    multitenant(s, { notice: false });
    const Shop = s.define(
      'Shop',
      { id: { type: DataTypes.INTEGER, primaryKey: true } },
      { tableName: 'm_shops', timestamps: false, tenantKey: 'id' },
    );
    const Org = s.define(
      'Org',
      { id: { type: DataTypes.UUID, primaryKey: true } },
      { tableName: 'm_orgs', timestamps: false, tenantKey: 'id' },
    );
    const Item = s.define(
      'Item',
      { id: { type: DataTypes.INTEGER, primaryKey: true }, shop_id: { type: DataTypes.INTEGER, primaryKey: true } },
      {
        tableName: 'm_items',
        timestamps: false,
        tenantKey: 'shop_id',
      },
    );
    const Doc = s.define(
      'Doc',
      { id: { type: DataTypes.INTEGER, primaryKey: true }, org_id: { type: DataTypes.UUID, primaryKey: true } },
      {
        tableName: 'm_docs',
        timestamps: false,
        tenantKey: 'org_id',
      },
    );
    const Memo = s.define(
      'Memo',
      { id: { type: DataTypes.INTEGER, primaryKey: true }, shop_id: { type: DataTypes.INTEGER, primaryKey: true } },
      {
        tableName: 'm_memos',
        timestamps: false,
        tenantKey: 'shop_id',
      },
    );
    Item.belongsTo(Shop, { foreignKey: 'shop_id' });
    Doc.belongsTo(Org, { foreignKey: 'org_id' });
    try {
      await s.sync({ force: true });
      await t.context.plain.query(
        'INSERT INTO m_shops VALUES (1), (2); INSERT INTO m_items VALUES (1, 1), (1, 2); INSERT INTO m_memos VALUES (1, 1), (1, 2)',
      );
      await t.context.plain.query(
        "INSERT INTO m_orgs VALUES ('6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c'); INSERT INTO m_docs VALUES (1, '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c')",
      );
      const dir = tempDir();
      const none = await t.throwsAsync(exportTenant(s, 1, { to: dir }), { instanceOf: MultitenantError });
      t.regex(none?.message ?? '', /several tenant tables \(Shop, Org\): pass \{ model \}/);
      const unplaced = await t.throwsAsync(deleteTenant(s, 1, { confirm: 1, model: Shop }), { instanceOf: MultitenantError });
      t.regex(unplaced?.message ?? '', /Memo's tenant table cannot be told/);
      t.is(unplaced?.model, 'Memo');
      Memo.belongsTo(Shop, { foreignKey: 'shop_id' });
      const manifest = await exportTenant(s, 1, { to: dir, model: Shop });
      t.deepEqual(
        manifest.tables.map((x) => [x.table, x.rows]),
        [
          ['m_shops', 1],
          ['m_items', 1],
          ['m_memos', 1],
        ],
      );
      const wrong = await t.throwsAsync(exportTenant(s, 1, { to: dir, model: Item }), { instanceOf: MultitenantError });
      t.regex(wrong?.message ?? '', /Item is not a tenant table/);
      // the org's id does not fit the shop's integer column: refused before any SQL
      await t.throwsAsync(exportTenant(s, '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c', { to: dir, model: Shop }), {
        instanceOf: InvalidTenantError,
      });
      const org = await exportTenant(s, '6F1C2A9E-1B7A-4C55-9A53-0D1E2F3A4B5C', { to: tempDir(), model: Org });
      t.deepEqual(
        org.tables.map((x) => [x.table, x.rows]),
        [
          ['m_orgs', 1],
          ['m_docs', 1],
        ],
      );
      rmSync(dir, { recursive: true });
    } finally {
      await s.close();
    }
  },
);

test.serial('importTenant refuses what is not an export, an export cut short, and a line that is no row', async (t) => {
  const { sequelize, plain } = t.context;
  await seed(plain, 2);
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (c: Buffer) => {
    text += c.toString('utf8');
  });
  await exportTenant(sequelize, 1, { to: sink });
  await deleteTenant(sequelize, 1, { confirm: 1 });
  const lines = text.trim().split('\n');
  const cases: Array<[string, string, RegExp]> = [
    ['not json', 'hello\n', /not an export/],
    ['another json', '{"a":1}\n', /not an export/],
    ['cut short', `${lines.slice(0, -1).join('\n')}\n`, /without its manifest/],
    [
      'a table twice',
      `${lines.flatMap((l) => (l.startsWith('["table",{"table":"orders"') ? [l, l] : [l])).join('\n')}\n`,
      /in two sections/,
    ],
    ['a broken row', `${lines.map((l) => (l.startsWith('["row",{"id":2') ? '["row",{"id":2,]' : l)).join('\n')}\n`, /is not a row/],
  ];
  for (const [name, body, message] of cases) {
    const err = await t.throwsAsync(importTenant(sequelize, Readable.from([body])), { instanceOf: MultitenantError }, name);
    t.regex(err?.message ?? '', message, name);
    t.deepEqual(await snapshot(plain, 1), { stores: [], products: [], orders: [] }, name);
  }
  await importTenant(sequelize, Readable.from([text]));
  t.is((await snapshot(plain, 1)).orders?.length, 4);
});

test.serial('copyTenant: every row of 1 again as 3, verified; 1 and 2 untouched; refusals change nothing', async (t) => {
  const { sequelize, plain } = t.context;
  await seed(plain, 6);
  const before = await snapshot(plain);
  const as3 = (rows: string[] | undefined, table: string) =>
    (rows ?? []).map((r) => (table === 'stores' ? r.replace(/^\(1,one\)$/, '(3,one)') : r.replace(/^\((\d+),1,/, '($1,3,'))).sort();
  // refused: no or another confirmation, onto itself, onto a tenant with rows, from a tenant that does not exist
  const refusals: Array<[Promise<unknown>, RegExp]> = [
    [copyTenant(sequelize, 1, 3, {} as { confirm: unknown }), /pass \{ confirm: "3" \}/],
    [copyTenant(sequelize, 1, 3, { confirm: 1 }), /pass \{ confirm: "3" \}/],
    [copyTenant(sequelize, 1, '01', { confirm: 1 }), /onto itself/],
    [copyTenant(sequelize, 1, 2, { confirm: 2 }), /tenant 2 already has rows/],
    [copyTenant(sequelize, 9, 3, { confirm: 3 }), /tenant 9 does not exist/],
    [copyTenant(sequelize, 1, 3, { confirm: 3, set: { nowhere: { a: 1 } } }), /set names nowhere/],
  ];
  for (const [call, message] of refusals) {
    const err = await t.throwsAsync(call, { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', message);
  }
  // a unique key without the tenant column: refused before anything is written, with the fix (Citus
  // allows none on a distributed table: there is nothing to refuse)
  if (!onCitus) {
    await plain.query('CREATE UNIQUE INDEX products_price_uq ON products (price)');
    const collide = await t.throwsAsync(copyTenant(sequelize, 1, 3, { confirm: 3 }), { instanceOf: MultitenantError });
    t.regex(
      collide?.message ?? '',
      /unique key products_price_uq \(price\) does not include the tenant column store_id.*Include store_id in the key/,
    );
    await plain.query('DROP INDEX products_price_uq');
    t.deepEqual(await snapshot(plain), before);
    // on the tenant table's one row, `set` gives the copy its own value
    await plain.query('CREATE UNIQUE INDEX stores_name_uq ON stores (name)');
    const named = await t.throwsAsync(copyTenant(sequelize, 1, 3, { confirm: 3 }), { instanceOf: MultitenantError });
    t.regex(named?.message ?? '', /\{ set: \{ stores: \{ name: \.\.\. \} \} \}/);
  }
  const copied = await copyTenant(sequelize, 1, 3, { confirm: 3, set: { stores: { name: 'one (sandbox)' } } });
  if (!onCitus) await plain.query('DROP INDEX stores_name_uq');
  t.deepEqual(copied.tables, [
    { table: 'stores', rows: 1 },
    { table: 'products', rows: 6 },
    { table: 'orders', rows: 12 },
  ]);
  const after = await snapshot(plain);
  const three = await snapshot(plain, 3);
  t.deepEqual(three.stores, ['(3,"one (sandbox)")']);
  t.deepEqual(
    three.products,
    as3(
      before.products?.filter((r) => /^\(\d+,1,/.test(r)),
      'products',
    ),
  );
  t.deepEqual(
    three.orders,
    as3(
      before.orders?.filter((r) => /^\(\d+,1,/.test(r)),
      'orders',
    ),
  );
  t.deepEqual(await snapshot(plain, 1), {
    stores: ['(1,one)'],
    products: before.products?.filter((r) => /^\(\d+,1,/.test(r)),
    orders: before.orders?.filter((r) => /^\(\d+,1,/.test(r)),
  });
  t.deepEqual(await snapshot(plain, 2), {
    stores: ['(2,two)'],
    products: before.products?.filter((r) => /^\(\d+,2,/.test(r)),
    orders: before.orders?.filter((r) => /^\(\d+,2,/.test(r)),
  });
  t.is(after.products?.length, 18);
  // the copy is a tenant like any other: the library scopes it
  t.is(await withTenant(3, () => t.context.Product.count()), 6);
});

(onCitus ? test.serial : test.skip)(
  'Citus: a tenant with shards of its own (isolateTenant) gets the advice that one DELETE per table is faster; a tenant sharing its shards does not — only with CITUS_URL (npm run test:citus)',
  async (t) => {
    const { sequelize, plain } = t.context;
    await seed(plain, 4);
    const shared = await deleteTenant(sequelize, 2, { confirm: 2, dryRun: true });
    t.is(shared.advice, undefined);
    await isolateTenant(sequelize, 2, { transferMode: 'block_writes' });
    const own = await deleteTenant(sequelize, 2, { confirm: 2, dryRun: true });
    t.regex(own.advice ?? '', /tenant 2 has a shard of its own in every table \(isolateTenant\).*one DELETE per table/);
    t.is((await deleteTenant(sequelize, 1, { confirm: 1, dryRun: true })).advice, undefined);
    const done = await deleteTenant(sequelize, 2, { confirm: 2, batchSize: 1_000_000 });
    t.is(done.total, 13);
    t.deepEqual(await snapshot(plain, 2), { stores: [], products: [], orders: [] });
  },
);
