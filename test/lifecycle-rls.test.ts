// Tenant lifecycle under row-level security (#30): connected as a role the policies apply to, export,
// delete and import run with the tenant's own setting — never the bypass — and the round trip restores
// the rows while the other tenant's stay as they were.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { QueryTypes, Sequelize } from 'sequelize';
import { multitenant, withTenant } from '../src/index';
import { copyTenant } from '../src/lifecycle/copy';
import { deleteTenant } from '../src/lifecycle/delete';
import { exportTenant } from '../src/lifecycle/export';
import { importTenant } from '../src/lifecycle/import';
import { BYPASS_SETTING, TENANT_SETTING } from '../src/rls/names';
import { onCitus, onEmbedded } from './helpers/db';
import { createRlsDatabase, defineStoreModels, type RlsDatabase, reachesTheDatabase, watchingWire } from './helpers/rls';

interface Ctx {
  db: RlsDatabase;
  sequelize: Sequelize;
  /** Every message sent on the connections, the library's settings included. */
  wire: string[];
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createRlsDatabase();
  const wire: string[] = [];
  const sequelize = new Sequelize(db.url, {
    logging: false,
    pool: { max: 1 },
    ...watchingWire(db.connectOptions(), (text) => wire.push(text)),
  });
  multitenant(sequelize, { notice: false, rls: true, ...reachesTheDatabase });
  const { Store, Product } = defineStoreModels(sequelize);
  await sequelize.sync({ force: true });
  for (const store of [1, 2]) {
    await withTenant(store, async () => {
      await Store.create({ id: store, name: `store ${store}` });
      await Product.bulkCreate([1, 2, 3].map((id) => ({ id, name: `p${id} of ${store}` })));
    });
  }
  t.context = { db, sequelize, wire };
});

test.after.always(async (t) => {
  await t.context.sequelize?.close();
  await t.context.db?.drop();
});

/** Every row as the admin (superuser, past the policies) sees it. */
async function everything(db: RlsDatabase): Promise<string[]> {
  const admin = new Sequelize(db.adminUrl, { logging: false });
  try {
    const rows = await admin.query<{ r: string }>(
      "SELECT 'stores ' || t::text AS r FROM stores t UNION ALL SELECT 'products ' || t::text FROM products t ORDER BY 1",
      {
        type: QueryTypes.SELECT,
      },
    );
    return rows.map((r) => r.r);
  } finally {
    await admin.close();
  }
}

(onEmbedded() ? test.skip : test.serial)(
  'export → delete → import under rls: the tenant setting of that tenant on every statement, never the bypass — read back as the superuser on a second connection: not on the embedded PGlite (one connection)',
  async (t) => {
    const { sequelize, db, wire } = t.context;
    const before = await everything(db);
    const dir = mkdtempSync(join(tmpdir(), 'smt-lifecycle-rls-'));
    wire.length = 0;
    const manifest = await exportTenant(sequelize, 1, { to: dir });
    t.deepEqual(
      manifest.tables.map((x) => [x.table, x.rows]),
      [
        ['stores', 1],
        ['products', 3],
      ],
    );
    const deleted = await deleteTenant(sequelize, 1, { confirm: 1 });
    t.is(deleted.total, 4);
    t.deepEqual(
      (await everything(db)).filter((r) => r.startsWith('products (1,') || r.startsWith('stores (1,')),
      [],
    );
    await importTenant(sequelize, dir);
    t.deepEqual(await everything(db), before);
    if (onCitus)
      t.false(
        wire.some((s) => /^INSERT INTO .* SELECT /.test(s)),
        'no INSERT ... SELECT on Citus under rls',
      );
    const settings = wire.filter((s) => s.includes('sequelize_multitenant.'));
    t.true(
      settings.some((s) => s.includes(`${TENANT_SETTING} = E'{"1"}'`)),
      settings.join('\n'),
    );
    t.false(
      settings.some((s) => s.includes(`${BYPASS_SETTING} = E'on'`) || /tenant = E'\{"2"\}'/.test(s)),
      settings.join('\n'),
    );
    rmSync(dir, { recursive: true });
  },
);

(onEmbedded() ? test.skip : test.serial)(
  'copyTenant under rls: both tenants in the setting, never the bypass; the copy matches its source row for row (on Citus through router INSERTs: COPY is refused under rls) — read back as the superuser: not on the embedded PGlite (one connection)',
  async (t) => {
    const { sequelize, db, wire } = t.context;
    const before = await everything(db);
    wire.length = 0;
    const copied = await copyTenant(sequelize, 2, 3, { confirm: 3, set: { stores: { name: 'store 3' } } });
    t.deepEqual(copied.tables, [
      { table: 'stores', rows: 1 },
      { table: 'products', rows: 3 },
    ]);
    const after = await everything(db);
    const three = after.filter((r) => !before.includes(r));
    t.deepEqual(three, ['products (3,1,"p1 of 2")', 'products (3,2,"p2 of 2")', 'products (3,3,"p3 of 2")', 'stores (3,"store 3")']);
    const settings = wire.filter((s) => s.includes('sequelize_multitenant.'));
    t.true(
      settings.some((s) => s.includes(`${TENANT_SETTING} = E'{"2","3"}'`)),
      settings.join('\n'),
    );
    t.false(
      settings.some((s) => s.includes(`${BYPASS_SETTING} = E'on'`)),
      settings.join('\n'),
    );
    if (onCitus)
      t.false(
        wire.some((s) => /^INSERT INTO .* SELECT /.test(s)),
        'no INSERT ... SELECT on Citus under rls',
      );
    await deleteTenant(sequelize, 3, { confirm: 3 });
    t.deepEqual(await everything(db), before);
  },
);
