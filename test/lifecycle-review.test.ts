// What a hostile review of the tenant lifecycle found (#30), each a test: a BIGINT tenant above 2^53, a
// manifest that names files outside its directory or a line without end, a model key the table does not
// enforce, a destination that fails or goes away, an export into a directory that holds one, a column
// named like the statement's alias, tables whose file names would collide or leave the directory, an
// import pinned to its tenant, unique indexes that are partial or on expressions, a global table's key that
// would stop a delete half-way. One instance at a time (the embedded PGlite serves one connection).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import anyTest, { type TestFn } from 'ava';
import { DataTypes, type Model, type ModelStatic, Sequelize } from 'sequelize';
import { copyTenant, deleteTenant, exportTenant, importTenant, MultitenantError, multitenant, withoutTenant } from '../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

// biome-ignore lint/suspicious/noExplicitAny: test models
type M = ModelStatic<Model<any, any>>;
const test = anyTest as TestFn<{ db: TestDatabase }>;

test.before(async (t) => {
  t.context = { db: await createTestDatabase() };
});
test.after.always(async (t) => {
  await t.context.db?.drop();
});

/** A fresh instance with the library (closed at the end of fn), raw setup SQL sent by it under withoutTenant. */
async function withInstance<T>(db: TestDatabase, fn: (s: Sequelize) => Promise<T>): Promise<T> {
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  multitenant(s, { notice: false });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'smt-review-'));
/** Every row of a model, in an order that ties nowhere (the tenant column, then the key). */
const all = (m: M) =>
  withoutTenant(() =>
    m.findAll({
      raw: true,
      order: [...m.primaryKeyAttributes, ...Object.keys(m.getAttributes())].map((a) => [a, 'ASC'] as [string, string]),
    }),
  );

test.serial('a BIGINT tenant above 2^53: export → delete → import restores its rows exactly', async (t) => {
  await withInstance(t.context.db, async (s) => {
    const Org = s.define(
      'Org',
      { id: { type: DataTypes.BIGINT, primaryKey: true }, name: DataTypes.TEXT },
      {
        tableName: 'big_orgs',
        tenantKey: 'id',
        timestamps: false,
      },
    ) as M;
    const Doc = s.define(
      'Doc',
      { org_id: { type: DataTypes.BIGINT, primaryKey: true }, id: { type: DataTypes.BIGINT, primaryKey: true }, n: DataTypes.BIGINT },
      { tableName: 'big_docs', tenantKey: 'org_id', timestamps: false },
    ) as M;
    Doc.belongsTo(Org, { foreignKey: 'org_id' });
    await withoutTenant(() => s.sync({ force: true }));
    const big = '9007199254740993';
    await withoutTenant(async () => {
      await Org.bulkCreate([
        { id: big, name: 'big' },
        { id: '9007199254740992', name: 'neighbour' },
      ]);
      await Doc.bulkCreate([
        { org_id: big, id: '9007199254740995', n: '9223372036854775807' },
        { org_id: big, id: 1, n: 1 },
        { org_id: '9007199254740992', id: 1, n: 2 },
      ]);
    });
    const before = [await all(Org), await all(Doc)];
    const dir = tempDir();
    try {
      await exportTenant(s, big, { to: join(dir, 'e') });
      t.is((await deleteTenant(s, big, { confirm: big })).total, 3);
      await importTenant(s, join(dir, 'e'));
      t.deepEqual([await all(Org), await all(Doc)], before);
      // a forged row of the neighbour, which JSON numbers cannot tell apart: PostgreSQL refuses it
      await deleteTenant(s, big, { confirm: big });
      const file = join(dir, 'e', 'big_docs.jsonl');
      writeFileSync(file, readFileSync(file, 'utf8').replace(`"org_id":${big}`, '"org_id":9007199254740992'));
      const err = await t.throwsAsync(importTenant(s, join(dir, 'e')), { instanceOf: MultitenantError });
      t.regex(
        err?.message ?? '',
        /belongs to tenant 9007199254740992, not to the export's tenant 9007199254740993|does not match the manifest/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test.serial(
  'a manifest that names a file outside its directory, and a line without end, are refused before anything is read or held',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      const Team = s.define(
        'Team',
        { id: { type: DataTypes.INTEGER, primaryKey: true } },
        { tableName: 'teams', tenantKey: 'id', timestamps: false },
      ) as M;
      await withoutTenant(() => Team.sync({ force: true }));
      const dir = tempDir();
      try {
        const secret = join(dir, 'secret.jsonl');
        writeFileSync(secret, 'DB_PASSWORD=hunter2\n');
        mkdirSync(join(dir, 'e'));
        for (const file of ['../secret.jsonl', '/etc/passwd', '..', 'sub/teams.jsonl', 'teams.txt']) {
          writeFileSync(
            join(dir, 'e', 'manifest.json'),
            JSON.stringify({
              format: 'sequelize-multitenant/tenant-export',
              version: 1,
              tenant: 1,
              tables: [{ table: 'teams', file, rows: 1, sha256: 'x' }],
            }),
          );
          const err = await t.throwsAsync(importTenant(s, join(dir, 'e')), { instanceOf: MultitenantError }, file);
          t.regex(err?.message ?? '', /the manifest names .* as a table's file/, file);
          t.notRegex(err?.message ?? '', /hunter2/);
        }
        // 257 MiB without a line end: refused at 256 MiB, not held until memory runs out
        const chunk = 'x'.repeat(2 ** 20);
        let sent = 0;
        const endless = new Readable({
          read() {
            this.push(sent++ === 0 ? '["export",{"format":"sequelize-multitenant/tenant-export","tenant":1}]\n' : chunk);
            if (sent > 300) this.push(null);
          },
        });
        const err = await t.throwsAsync(importTenant(s, endless), { instanceOf: MultitenantError });
        t.regex(err?.message ?? '', /a line of the export is longer than 256 MiB/);
        t.true(sent < 280, `stopped reading at ${sent} MiB`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

test.serial('a model key the table does not enforce (no primary key in the database): every row exported, deleted, imported', async (t) => {
  await withInstance(t.context.db, async (s) => {
    await s.query('DROP TABLE IF EXISTS loose; CREATE TABLE loose (id int, store_id int NOT NULL, name text)');
    await s.query("INSERT INTO loose VALUES (1, 1, 'a'), (1, 1, 'b'), (2, 1, 'c'), (2, 1, 'd'), (1, 2, 'other')");
    const Loose = s.define(
      'Loose',
      { id: { type: DataTypes.INTEGER, primaryKey: true }, store_id: DataTypes.INTEGER, name: DataTypes.TEXT },
      { tableName: 'loose', tenantKey: 'store_id', timestamps: false },
    ) as M;
    const names = async () =>
      ((await withoutTenant(() => Loose.findAll({ raw: true }))) as unknown as Array<{ store_id: number; name: string }>)
        .map((r) => `${r.store_id}${r.name}`)
        .sort();
    const dir = tempDir();
    try {
      const manifest = await exportTenant(s, 1, { to: join(dir, 'e'), batchSize: 1 });
      t.deepEqual(
        manifest.tables.map((x) => [x.table, x.rows, x.key]),
        [['loose', 4, []]],
      );
      t.is((await deleteTenant(s, 1, { confirm: 1, batchSize: 1 })).total, 4);
      t.deepEqual(await names(), ['2other']);
      await importTenant(s, join(dir, 'e'));
      t.deepEqual(await names(), ['1a', '1b', '1c', '1d', '2other']);
      // a copy too: counted and checked without a key
      const copied = await copyTenant(s, 1, 3, { confirm: 3 });
      t.is(copied.total, 4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await s.query('DROP TABLE loose');
    }
    void Loose;
  });
});

/** A store with a few products, in tables of their own (`prefix`), on instance s. */
async function storeTables(s: Sequelize, prefix: string, extra: Record<string, unknown> = {}) {
  const Store = s.define(
    `${prefix}Store`,
    { id: { type: DataTypes.INTEGER, primaryKey: true }, name: DataTypes.TEXT },
    {
      tableName: `${prefix}stores`,
      tenantKey: 'id',
      timestamps: false,
    },
  ) as M;
  const Item = s.define(
    `${prefix}Item`,
    {
      store_id: { type: DataTypes.INTEGER, primaryKey: true },
      id: { type: DataTypes.INTEGER, primaryKey: true },
      name: DataTypes.TEXT,
      ...extra,
    },
    { tableName: `${prefix}items`, tenantKey: 'store_id', timestamps: false },
  ) as M;
  Item.belongsTo(Store, { foreignKey: 'store_id' });
  await withoutTenant(() => s.sync({ force: true }));
  await withoutTenant(async () => {
    await Store.bulkCreate([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    await Item.bulkCreate([1, 2].flatMap((store_id) => [1, 2, 3, 4, 5].map((id) => ({ store_id, id, name: `i${id}` }))));
  });
  return { Store, Item };
}

test.serial(
  'a destination that fails or goes away ends the export with a MultitenantError — no crash, no hang, the connection back in the pool',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      const { Item } = await storeTables(s, 'dst_');
      // fails on its third write
      let writes = 0;
      const failing = new Writable({
        write(_chunk, _encoding, done) {
          done(++writes === 3 ? new Error('disk full') : null);
        },
      });
      const failed = await t.throwsAsync(exportTenant(s, 1, { to: failing, batchSize: 1 }), { instanceOf: MultitenantError });
      t.regex(failed?.message ?? '', /the destination failed \(disk full\) before the export was complete/);
      // never drains, then goes away (a client that closed its download)
      const stuck = new Writable({ highWaterMark: 1, write() {} });
      const pending = exportTenant(s, 1, { to: stuck, batchSize: 1 });
      setTimeout(() => stuck.destroy(), 200);
      const closed = await t.throwsAsync(pending, { instanceOf: MultitenantError });
      t.regex(closed?.message ?? '', /the destination was closed before the export was complete/);
      // the only pooled connection is free again: its transaction ended
      t.is((await withoutTenant(() => Item.count())) as number, 10);
      // a directory that is not empty is refused: an export is never mixed with an older one
      const dir = tempDir();
      try {
        await exportTenant(s, 1, { to: dir });
        const manifest = readFileSync(join(dir, 'manifest.json'), 'utf8');
        const again = await t.throwsAsync(exportTenant(s, 1, { to: dir }), { instanceOf: MultitenantError });
        t.regex(again?.message ?? '', /is not empty .*: export into a new or empty directory/);
        t.is(readFileSync(join(dir, 'manifest.json'), 'utf8'), manifest, 'the old export untouched');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

test.serial(
  'a column named like the statements’ alias (t, smt_row) and tables whose names would collide or leave the directory: exported, copied, restored',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      await s.query('CREATE SCHEMA IF NOT EXISTS x');
      const { Item } = await storeTables(s, 'alias_', { t: DataTypes.DOUBLE, smt_row: DataTypes.TEXT });
      const Dotted = s.define(
        'Dotted',
        { store_id: { type: DataTypes.INTEGER, primaryKey: true }, id: { type: DataTypes.INTEGER, primaryKey: true } },
        { tableName: 'x.y', tenantKey: 'store_id', timestamps: false },
      ) as M;
      const Schemed = s.define(
        'Schemed',
        { store_id: { type: DataTypes.INTEGER, primaryKey: true }, id: { type: DataTypes.INTEGER, primaryKey: true } },
        { tableName: 'y', schema: 'x', tenantKey: 'store_id', timestamps: false },
      ) as M;
      const Escaping = s.define(
        'Escaping',
        { store_id: { type: DataTypes.INTEGER, primaryKey: true }, id: { type: DataTypes.INTEGER, primaryKey: true } },
        { tableName: '../evil', tenantKey: 'store_id', timestamps: false },
      ) as M;
      for (const m of [Dotted, Schemed, Escaping]) {
        await withoutTenant(async () => {
          await m.sync({ force: true });
          await m.bulkCreate([{ store_id: 1, id: 1 }]);
        });
      }
      await withoutTenant(() => Item.update({ t: 1.5, smt_row: 'r' }, { where: { id: 1 } }));
      const before = await all(Item);
      const dir = tempDir();
      try {
        const manifest = await exportTenant(s, 1, { to: join(dir, 'e') });
        const files = manifest.tables.map((x) => x.file).sort();
        t.deepEqual(files, ['%2E%2E%2Fevil.jsonl', 'alias_items.jsonl', 'alias_stores.jsonl', 'x%2Ey.jsonl', 'x.y.jsonl']);
        t.deepEqual(readdirSync(join(dir, 'e')).sort(), [...files, 'manifest.json'].sort());
        t.deepEqual(readdirSync(dir), ['e'], 'nothing written outside the directory');
        const copied = await copyTenant(s, 1, 3, { confirm: 3 });
        t.is(copied.total, 1 + 5 + 3);
        await deleteTenant(s, 3, { confirm: 3 });
        await deleteTenant(s, 1, { confirm: 1 });
        await importTenant(s, join(dir, 'e'));
        t.deepEqual(await all(Item), before);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        for (const m of [Dotted, Schemed, Escaping]) await withoutTenant(() => m.drop());
      }
    });
  },
);

test.serial('importTenant({ tenant }): an export of another tenant is refused before anything is written', async (t) => {
  await withInstance(t.context.db, async (s) => {
    const { Item } = await storeTables(s, 'pin_');
    const dir = tempDir();
    try {
      await exportTenant(s, 1, { to: join(dir, 'e') });
      await deleteTenant(s, 1, { confirm: 1 });
      const err = await t.throwsAsync(importTenant(s, join(dir, 'e'), { tenant: 2 }), { instanceOf: MultitenantError });
      t.regex(err?.message ?? '', /the export is of tenant 1, and this import may write tenant 2 only; nothing was imported/);
      t.is((await withoutTenant(() => Item.count())) as number, 5);
      await importTenant(s, join(dir, 'e'), { tenant: '01' });
      t.is((await withoutTenant(() => Item.count())) as number, 10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

(onCitus ? test.skip : test.serial)(
  'copyTenant: a partial or expression unique index without the tenant column is refused with its definition; nothing is copied (Citus allows none)',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      const { Item } = await storeTables(s, 'uq_', { deleted_at: DataTypes.DATE });
      // names unique across the stores, so that the indexes can be made
      await withoutTenant(() => Item.update({ name: s.fn('concat', s.col('name'), '-', s.col('store_id')) }, { where: {} }));
      for (const [index, shown] of [
        ['CREATE UNIQUE INDEX uq_live ON uq_items (name) WHERE deleted_at IS NULL', /uq_live \(name\) WHERE \(deleted_at IS NULL\)/],
        ['CREATE UNIQUE INDEX uq_lower ON uq_items (lower(name))', /uq_lower \(lower\(name\)\)/],
      ] as const) {
        await s.query(index);
        const err = await t.throwsAsync(copyTenant(s, 1, 3, { confirm: 3 }), { instanceOf: MultitenantError });
        t.regex(err?.message ?? '', shown);
        t.regex(err?.message ?? '', /does not include the tenant column store_id.*nothing was copied/);
        t.is((await withoutTenant(() => Item.count({ where: { store_id: 3 } }))) as number, 0);
        await s.query(`DROP INDEX ${index.split(' ')[3]}`);
      }
    });
  },
);

test.serial(
  'deleteTenant: a global table that refers to the tenant’s rows without an ON DELETE action is found first — nothing is deleted',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      const { Item } = await storeTables(s, 'glob_');
      await s.query(
        'CREATE TABLE glob_reviews (id int PRIMARY KEY, store_id int, item_id int, FOREIGN KEY (store_id, item_id) REFERENCES glob_items (store_id, id))',
      );
      await s.query('INSERT INTO glob_reviews VALUES (1, 1, 3)');
      try {
        for (const dryRun of [true, false]) {
          const err = await t.throwsAsync(deleteTenant(s, 1, { confirm: 1, dryRun }), { instanceOf: MultitenantError });
          t.regex(
            err?.message ?? '',
            /glob_reviews \(outside the tenant's tables\) has rows that refer to tenant 1's rows in glob_items \(foreign key .*\): .*nothing was deleted/,
          );
        }
        t.is((await withoutTenant(() => Item.count())) as number, 10);
        // tenant 2 has no such row: deleted
        t.is((await deleteTenant(s, 2, { confirm: 2 })).total, 6);
      } finally {
        await s.query('DROP TABLE glob_reviews');
      }
    });
  },
);

(onCitus ? test.skip : test.serial)(
  'deleteTenant (not on Citus, which allows no such key): a key between tenant tables that does not pair the tenant columns — another tenant’s row referring to this one’s — is found first, whatever its ON DELETE; nothing of either tenant changes',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      const { Item } = await storeTables(s, 'xref_');
      const Referral = s.define(
        'XrefReferral',
        {
          store_id: { type: DataTypes.INTEGER, primaryKey: true },
          id: { type: DataTypes.INTEGER, primaryKey: true },
          referred_by: DataTypes.INTEGER,
        },
        { tableName: 'xref_referrals', tenantKey: 'store_id', timestamps: false },
      ) as M;
      await withoutTenant(() => Referral.sync({ force: true }));
      const snapshot = async () => [await all(Item), await all(Referral)];
      for (const action of ['CASCADE', 'SET NULL', 'NO ACTION']) {
        await s.query('ALTER TABLE xref_referrals DROP CONSTRAINT IF EXISTS xref_referred_by');
        await s.query(
          `ALTER TABLE xref_referrals ADD CONSTRAINT xref_referred_by FOREIGN KEY (referred_by) REFERENCES xref_stores (id) ON DELETE ${action}`,
        );
        // store 2 was referred by store 1: a row of tenant 2 that points at tenant 1's row
        await withoutTenant(() => Referral.destroy({ where: {} }));
        await withoutTenant(() => Referral.create({ store_id: 2, id: 1, referred_by: 1 }));
        const before = await snapshot();
        const err = await t.throwsAsync(deleteTenant(s, 1, { confirm: 1 }), { instanceOf: MultitenantError }, action);
        t.regex(
          err?.message ?? '',
          /xref_referrals has a row of another tenant \(2\) that refers to tenant 1's rows in xref_stores \(foreign key xref_referred_by, .*which does not pair the tenant columns\): .*nothing was deleted/,
          action,
        );
        t.deepEqual(await snapshot(), before, `${action}: nothing of either tenant changed`);
      }
      // tenant 2 has no such reference to it: deleted
      t.is((await deleteTenant(s, 2, { confirm: 2 })).total, 7);
    });
  },
);

test.serial(
  'import: a table file that is a link, a directory, a pipe or missing is refused before it is read; a line that is no row is not repeated',
  async (t) => {
    await withInstance(t.context.db, async (s) => {
      await storeTables(s, 'files_');
      const dir = tempDir();
      try {
        await exportTenant(s, 1, { to: join(dir, 'e') });
        await deleteTenant(s, 1, { confirm: 1 });
        const file = join(dir, 'e', 'files_items.jsonl');
        const good = readFileSync(file, 'utf8');
        const secret = join(dir, 'secret');
        writeFileSync(secret, 'root:x:0:0:root:/root:/bin/bash\n');
        const { execFileSync } = await import('node:child_process');
        const { symlinkSync, unlinkSync } = await import('node:fs');
        const cases: Array<[string, () => void, RegExp]> = [
          ['a link', () => symlinkSync(secret, file), /files_items\.jsonl, which the manifest names, is a symbolic link/],
          ['a directory', () => mkdirSync(file), /is a directory/],
          ['a pipe', () => execFileSync('mkfifo', [file]), /is not a regular file/],
          ['missing', () => undefined, /is missing from the export/],
        ];
        for (const [name, make, message] of cases) {
          rmSync(file, { recursive: true, force: true });
          make();
          const err = await t.throwsAsync(importTenant(s, join(dir, 'e')), { instanceOf: MultitenantError }, name);
          t.regex(err?.message ?? '', message, name);
          t.notRegex(err?.message ?? '', /root:x/, name);
        }
        rmSync(file, { recursive: true, force: true });
        writeFileSync(file, `${good}root:x:0:0:root:/root:/bin/bash\n`);
        const bad = await t.throwsAsync(importTenant(s, join(dir, 'e')), { instanceOf: MultitenantError });
        t.regex(bad?.message ?? '', /line 6 of files_items is not a row \(31 characters\)/);
        t.notRegex(bad?.message ?? '', /root:x/);
        unlinkSync(file);
        writeFileSync(file, good);
        await importTenant(s, join(dir, 'e'));
        // export destinations that are no directory: refused with a MultitenantError, nothing written
        writeFileSync(join(dir, 'plain-file'), 'x');
        for (const [to, message] of [
          ['', /it needs \{ to \}/],
          [join(dir, 'plain-file'), /is a file, not a directory/],
          [join(dir, 'plain-file', 'sub'), /cannot be made a directory/],
        ] as const) {
          const err = await t.throwsAsync(exportTenant(s, 1, { to }), { instanceOf: MultitenantError }, to);
          t.regex(err?.message ?? '', message, to);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
