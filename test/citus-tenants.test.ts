// Growing on Citus: tenantStats (citus_stat_tenants) and isolateTenant (isolate_tenant_to_new_shard).
// On plain PostgreSQL both refuse with a MultitenantError; the Citus cases run with CITUS_URL=postgres://...
// (a coordinator with citus.stat_tenants_track = 'all' and wal_level = logical) and are reported as
// skipped otherwise.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { isolationError } from '../src/citus/tenants';
import { isolateTenant, MultitenantError, multitenant, routerOnly, tenantStats, withoutTenant, withTenant } from '../src/index';
import { createTestDatabase, onCitus } from './helpers/db';

const url = process.env.CITUS_URL;
const citusTest = url ? test.serial : test.skip;
const plainTest = onCitus ? test.skip : test.serial;

function define(sequelize: Sequelize, schema?: string) {
  const Shop = sequelize.define(
    'Shop',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, name: DataTypes.STRING },
    { tableName: 'shops', schema, tenantKey: 'id', timestamps: false },
  );
  const Item = sequelize.define(
    'Item',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, shop_id: { type: DataTypes.INTEGER, primaryKey: true }, name: DataTypes.STRING },
    { tableName: 'items', schema, tenantKey: 'shop_id', timestamps: false },
  );
  Item.belongsTo(Shop, { foreignKey: 'shop_id' });
  Shop.hasMany(Item, { foreignKey: 'shop_id' });
  return { Shop, Item };
}

plainTest('plain PostgreSQL: tenantStats and isolateTenant say they need Citus; bad options are refused first', async (t) => {
  const db = await createTestDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: db.maxConnections } });
  try {
    multitenant(sequelize, { notice: false });
    define(sequelize);
    await t.throwsAsync(() => tenantStats(sequelize), { instanceOf: MultitenantError, message: /^tenantStats: tenantStats needs Citus/ });
    await t.throwsAsync(() => isolateTenant(sequelize, 1), { instanceOf: MultitenantError, message: /isolateTenant needs Citus/ });
    await t.throwsAsync(() => tenantStats(sequelize, { top: 0 }), { message: /option top must be a positive integer/ });
    await t.throwsAsync(() => tenantStats(sequelize, { by: 'rows' as never }), { message: /option by must be/ });
    await t.throwsAsync(() => isolateTenant(sequelize, [1, 2]), { message: /isolate one tenant at a time/ });
    await t.throwsAsync(() => isolateTenant(sequelize, 'abc'), { message: /invalid tenant|does not fit|not a valid/i });
    const Item = sequelize.models.Item as never;
    await t.throwsAsync(() => isolateTenant(sequelize, 1, { model: Item }), { message: /option model must be a tenant table/ });
    await t.throwsAsync(() => isolateTenant(sequelize, 1, { transferMode: 'fast' as never }), { message: /option transferMode must be/ });
  } finally {
    await sequelize.close();
    await db.drop();
  }
});

test('a refusal from Citus comes back with the fix', (t) => {
  const refusal = (message: string) => Object.assign(new Error(message), { original: { message } });
  t.regex(
    isolationError(refusal('logical decoding requires wal_level >= logical'), 'Shop', 3).message,
    /set wal_level = logical .*block_writes/,
  );
  t.regex(isolationError(refusal('library "citus" may not be used as an output plugin'), 'Shop', 3).message, /output_plugin_libraries/);
  t.regex(
    isolationError(
      refusal(
        "cannot use logical replication to transfer shards of the relation x since it doesn't have a REPLICA IDENTITY or PRIMARY KEY",
      ),
      'Shop',
      3,
    ).message,
    /give every colocated table a primary key/,
  );
  const plain = isolationError(refusal('something else'), 'Shop', 3);
  t.is(plain.operation, 'isolateTenant');
  t.regex(plain.message, /^Shop\.isolateTenant: Citus refused to isolate tenant 3: something else\. \(current tenant: none\)$/);
});

const schema = `smt_tenants_${process.pid}_${randomBytes(3).toString('hex')}`;
let sequelize: Sequelize;
let models: ReturnType<typeof define>;
if (url) {
  test.before(async () => {
    sequelize = new Sequelize(url, { logging: false, pool: { max: 4 } });
    await sequelize.query(`CREATE SCHEMA ${schema}`);
    multitenant(sequelize, { notice: false });
    models = define(sequelize, schema);
    await sequelize.sync();
    await withoutTenant(async () => {
      await models.Shop.bulkCreate([1, 2, 3, 4].map((id) => ({ id, name: `shop-${id}` })));
      for (const shop of [1, 2, 3, 4])
        await models.Item.bulkCreate([1, 2, 3].map((id) => ({ id, shop_id: shop, name: `item-${shop}-${id}` })));
    });
  });
  test.after.always(async () => {
    if (!sequelize) return;
    await sequelize.query(`DROP SCHEMA ${schema} CASCADE`);
    await sequelize.close();
  });
}

citusTest('tenantStats: the busiest tenants by router queries, reads and CPU, typed as the tenant column', async (t) => {
  await sequelize.query('SELECT citus_stat_tenants_reset()');
  for (let i = 0; i < 6; i++) await withTenant(3, () => models.Item.findAll());
  for (let i = 0; i < 3; i++) await withTenant(1, () => models.Item.count());
  await withTenant(2, () => models.Item.update({ name: 'x' }, { where: { id: 1 } }));
  const top = await tenantStats(sequelize, { top: 2 });
  t.deepEqual(
    top.map((r) => [r.tenant, r.model, r.queries]),
    [
      [3, 'Shop', 6],
      [1, 'Shop', 3],
    ],
  );
  t.true(top.every((r) => typeof r.tenant === 'number' && r.cpuSeconds > 0 && Number.isInteger(r.colocationId)));
  const byReads = await tenantStats(sequelize, { by: 'reads' });
  t.deepEqual(
    byReads.map((r) => [r.tenant, r.reads]),
    [
      [3, 6],
      [1, 3],
      [2, 0],
    ],
  );
  const byCpu = await tenantStats(sequelize, { by: 'cpu', top: 1 });
  t.is(byCpu.length, 1);
  t.deepEqual(
    await tenantStats(sequelize, { period: 'last' }).then((rows) =>
      rows.filter((r) => r.model === 'Shop' && r.tenant === 3 && r.queries > 6),
    ),
    [],
  );
});

citusTest('tenantStats with tracking off says how to turn it on', async (t) => {
  // one connection, so that the session setting is the one tenantStats reads
  const single = new Sequelize(url ?? '', { logging: false, pool: { max: 1 } });
  try {
    multitenant(single, { notice: false });
    await single.query(`SET citus.stat_tenants_track = 'none'`);
    const err = await t.throwsAsync(() => tenantStats(single), { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', /Citus does not track tenants \(citus\.stat_tenants_track = 'none'\)\. Turn it on/);
    t.regex(err?.message ?? '', /ALTER SYSTEM SET citus\.stat_tenants_track = 'all'; SELECT pg_reload_conf\(\);/);
    t.regex(err?.message ?? '', /run_command_on_workers/);
  } finally {
    await single.close();
  }
});

citusTest('isolateTenant: the tenant gets shards of its own in every colocated table, once; its queries stay router queries', async (t) => {
  const first = await isolateTenant(sequelize, 3);
  t.true(first.changed);
  t.is(first.tenant, 3);
  const ours = first.shards;
  // the application's tables only: sync gave them a colocation group of their own
  t.deepEqual(ours.map((s) => s.table).sort(), [`${schema}.items`, `${schema}.shops`]);
  t.is(new Set(first.shards.map((s) => `${s.node}:${s.port}`)).size, 1, 'all on one node');
  const again = await isolateTenant(sequelize, models.Shop.build({ id: 3 }, { isNewRecord: false }));
  t.false(again.changed);
  t.deepEqual(
    again.shards.map((s) => s.shardId),
    first.shards.map((s) => s.shardId),
  );
  // the shard holds exactly that tenant (min = max hash value)
  const [range] = (await sequelize.query(
    `SELECT shardminvalue = shardmaxvalue AS one FROM pg_dist_shard WHERE shardid = ${ours[0]?.shardId}`,
  )) as [Array<{ one: boolean }>, unknown];
  t.true(range[0]?.one);
  // still router queries (routerOnly makes a fan-out fail), and the rows are all there
  const checked = new Sequelize(url ?? '', { logging: false, pool: { max: 2 } });
  try {
    multitenant(checked, { notice: false });
    routerOnly(checked);
    const m = define(checked, schema);
    const items = await withTenant(3, () => m.Shop.findAll({ include: [m.Item] }));
    t.deepEqual(items.flatMap((s) => (s.get('Items') as Array<{ get(k: string): unknown }>).map((i) => i.get('name'))).sort(), [
      'item-3-1',
      'item-3-2',
      'item-3-3',
    ]);
    t.is(await withTenant(3, () => m.Item.count()), 3);
    await withTenant(3, () => m.Item.create({ id: 4, name: 'item-3-4' }));
    t.is(await withTenant(4, () => m.Item.count()), 3);
  } finally {
    await checked.close();
  }
});

citusTest(
  "a colocation group of the application's own: another application's table is neither split by isolateTenant nor counted by tenantStats; one that joins the group stops isolateTenant",
  async (t) => {
    const own = `smt_group_${process.pid}_${randomBytes(3).toString('hex')}`;
    const s = new Sequelize(url ?? '', { logging: false, pool: { max: 2 } });
    try {
      await s.query(`CREATE SCHEMA ${own}`);
      // another application's table, distributed the default way before this one syncs
      await s.query(`CREATE TABLE ${own}.strangers (id int, shop_id int, PRIMARY KEY (shop_id, id))`);
      await s.query(`SELECT create_distributed_table('${own}.strangers', 'shop_id')`);
      await s.query(`INSERT INTO ${own}.strangers VALUES (1, 4), (2, 4)`);
      multitenant(s, { notice: false });
      const m = define(s, own);
      await s.sync();
      await withoutTenant(async () => {
        await m.Shop.bulkCreate([2, 4].map((id) => ({ id, name: `shop-${id}` })));
        await m.Item.bulkCreate([{ id: 1, shop_id: 4, name: 'x' }]);
      });
      const groups = (await s.query(
        `SELECT logicalrelid::text AS t, colocationid AS g FROM pg_dist_partition WHERE logicalrelid::text LIKE '${own}.%' ORDER BY 1`,
        { type: QueryTypes.SELECT },
      )) as Array<{ t: string; g: number }>;
      const groupOf = (table: string) => groups.find((g) => g.t === `${own}.${table}`)?.g;
      t.truthy(groupOf('shops'));
      t.is(groupOf('shops'), groupOf('items'));
      t.not(groupOf('shops'), groupOf('strangers'));
      t.deepEqual(
        groups.filter((g) => g.g === groupOf('shops')).map((g) => g.t),
        [`${own}.items`, `${own}.shops`],
      );
      // router queries of tenant 4 on the stranger: counted by Citus, not by tenantStats
      await s.query('SELECT citus_stat_tenants_reset()');
      for (let i = 0; i < 5; i++) await s.query(`SELECT * FROM ${own}.strangers WHERE shop_id = 4`);
      await withTenant(2, () => m.Item.count());
      t.deepEqual(
        (await tenantStats(s)).filter((r) => r.colocationId === groupOf('strangers')),
        [],
      );
      // isolating a tenant splits the application's tables only
      const shardsOf = async (table: string) =>
        (
          (await s.query(`SELECT count(*)::int AS n FROM pg_dist_shard WHERE logicalrelid = '${own}.${table}'::regclass`, {
            type: QueryTypes.SELECT,
          })) as Array<{ n: number }>
        )[0]?.n;
      const strangerShards = await shardsOf('strangers');
      const isolated = await isolateTenant(s, 4);
      t.deepEqual(isolated.shards.map((x) => x.table).sort(), [`${own}.items`, `${own}.shops`]);
      t.is(await shardsOf('strangers'), strangerShards, "the stranger's shards are not split");
      // a table of another application that joins the group: isolateTenant refuses, naming it, splitting nothing
      await s.query(`CREATE TABLE ${own}.late (id int, shop_id int, PRIMARY KEY (shop_id, id))`);
      await s.query(`SELECT create_distributed_table('${own}.late', 'shop_id', colocate_with => '${own}.shops')`);
      const lateShards = await shardsOf('late');
      const err = await t.throwsAsync(() => isolateTenant(s, 2), { instanceOf: MultitenantError });
      t.regex(
        err?.message ?? '',
        new RegExp(`the colocation group of shops also holds ${own}\\.late, which no model of this application defines`),
      );
      t.is(await shardsOf('late'), lateShards);
    } finally {
      await s.query(`DROP SCHEMA IF EXISTS ${own} CASCADE`).catch(() => undefined);
      await s.close();
    }
  },
);

citusTest(
  "the doctor warns when the tenant table shares its colocation group with another application's tables, and its fix moves it",
  async (t) => {
    const own = `smt_doctor_${process.pid}_${randomBytes(3).toString('hex')}`;
    const s = new Sequelize(url ?? '', { logging: false, pool: { max: 2 } });
    try {
      await s.query(`CREATE SCHEMA ${own}`);
      // distributed by hand the old way: every table in Citus' default group, with a stranger
      for (const sql of [
        `CREATE TABLE ${own}.shops (id int PRIMARY KEY, name text)`,
        `CREATE TABLE ${own}.items (id int, shop_id int REFERENCES ${own}.shops (id), name text, PRIMARY KEY (shop_id, id))`,
        `CREATE TABLE ${own}.other_app (id int, tenant int, PRIMARY KEY (tenant, id))`,
        `SELECT create_distributed_table('${own}.other_app', 'tenant', colocate_with => 'none')`,
        `SELECT create_distributed_table('${own}.shops', 'id', colocate_with => '${own}.other_app')`,
        `SELECT create_distributed_table('${own}.items', 'shop_id', colocate_with => '${own}.shops')`,
      ])
        await s.query(sql);
      multitenant(s, { notice: false });
      define(s, own);
      const { inspect } = await import('../src/doctor/inspect');
      const { orderedFixes } = await import('../src/doctor/migration');
      const reports = await inspect(s);
      const warning = reports.flatMap((r) => r.problems).find((p) => /colocation group also holds/.test(p.message));
      t.truthy(warning, JSON.stringify(reports.map((r) => r.problems)));
      t.is(warning?.severity, 'warn');
      t.regex(warning?.message ?? '', new RegExp(`1 table\\(s\\) outside this application \\(${own}\\.other_app\\)`));
      const fixes = orderedFixes(reports);
      for (const sql of [...fixes.transactional, ...fixes.distribution]) await s.query(sql);
      const after = await inspect(s);
      t.deepEqual(
        after.flatMap((r) => r.problems).filter((p) => /colocation group/.test(p.message)),
        [],
      );
      const [row] = (await s.query(
        `SELECT (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '${own}.shops'::regclass) = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '${own}.items'::regclass) AS together,
              (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '${own}.shops'::regclass) <> (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '${own}.other_app'::regclass) AS apart`,
        { type: QueryTypes.SELECT },
      )) as Array<{ together: boolean; apart: boolean }>;
      t.deepEqual(row, { together: true, apart: true });
    } finally {
      await s.query(`DROP SCHEMA IF EXISTS ${own} CASCADE`).catch(() => undefined);
      await s.close();
    }
  },
);
