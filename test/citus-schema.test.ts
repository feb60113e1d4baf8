// The schema layer's Citus side: sync refuses before any DDL what Citus would refuse part-way, converges
// over tables that existed before, never resolves over a local tenant table; the migration helpers
// validate first. Citus-only tests run with CITUS_URL (npm run test:citus) and are reported as skipped
// otherwise; the Citus guide's migration example (docs/citus.md) runs on both.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import { down, up } from '../examples/migrations/20261127-stores';
import { createDistributedTable, MultitenantError, multitenant, undistributeTable } from '../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

const test = anyTest as TestFn<{ db: TestDatabase }>;
const citusOnly = onCitus ? test.serial : test.skip;

test.before(async (t) => {
  t.context = { db: await createTestDatabase() };
});
test.after.always(async (t) => t.context?.db?.drop());

/** A fresh schema state and a Sequelize on it that records every statement. */
async function fresh(t: { context: { db: TestDatabase } }) {
  const { db } = t.context;
  const sent: string[] = [];
  const sequelize = new Sequelize(db.url, { logging: (sql) => void sent.push(sql), pool: { max: db.maxConnections } });
  const [[row]] = (await sequelize.query('SELECT current_schema() AS name')) as [Array<{ name: string }>, unknown];
  const schema = row?.name as string;
  await sequelize.query(`DROP SCHEMA "${schema}" CASCADE`);
  await sequelize.query(`CREATE SCHEMA "${schema}"`);
  sent.length = 0;
  const ddl = () => sent.filter((s) => /\b(CREATE|ALTER|DROP)\b|create_distributed_table|create_reference_table/.test(s));
  const tables = async () => {
    const [rows] = await sequelize.query(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`);
    return (rows as Array<{ tablename: string }>).map((r) => r.tablename);
  };
  const distributed = async () => {
    const [rows] = await sequelize.query(
      `SELECT logicalrelid::regclass::text AS t, partmethod AS m, colocationid AS g FROM pg_dist_partition
        WHERE logicalrelid::regclass::text IN (SELECT tablename FROM pg_tables WHERE schemaname = current_schema()) ORDER BY 1`,
    );
    return rows as Array<{ t: string; m: string; g: number }>;
  };
  return { sequelize, schema, sent, ddl, tables, distributed };
}

const id = () => ({ type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true });
const tenant = () => ({ type: DataTypes.BIGINT, primaryKey: true, allowNull: false });

citusOnly('a tenant table key of another type (INTEGER stores.id, BIGINT store_id) is refused before any DDL', async (t) => {
  const { sequelize, ddl, tables } = await fresh(t);
  try {
    multitenant(sequelize, { notice: false });
    const Store = sequelize.define(
      'Store',
      { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true } },
      { tableName: 'stores', tenantKey: 'id' },
    );
    const Product = sequelize.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id' });
    for (const declared of [false, true]) {
      if (declared) Product.belongsTo(Store, { foreignKey: 'store_id' });
      const err = await t.throwsAsync(() => sequelize.sync(), { instanceOf: MultitenantError });
      t.is(err?.model, 'Product');
      t.regex(
        err?.message ?? '',
        /products\.store_id is BIGINT but stores's key is INTEGER: Citus colocates .* Declare both BIGINT; nothing was created/,
      );
      t.deepEqual(ddl(), []);
      t.deepEqual(await tables(), []);
    }
  } finally {
    await sequelize.close();
  }
});

citusOnly('a unique key without the tenant column, or a key to a global non-reference model: refused before any DDL', async (t) => {
  for (const shape of ['attribute', 'index', 'global'] as const) {
    const { sequelize, ddl, tables } = await fresh(t);
    try {
      multitenant(sequelize, { notice: false });
      sequelize.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id' });
      const Currency = sequelize.define('Currency', { code: { type: DataTypes.STRING(3), primaryKey: true } }, { tableName: 'currencies' });
      const Product = sequelize.define(
        'Product',
        { id: id(), store_id: tenant(), sku: { type: DataTypes.STRING, unique: shape === 'attribute' } },
        { tableName: 'products', tenantKey: 'store_id', indexes: shape === 'index' ? [{ unique: true, fields: ['sku'] }] : [] },
      );
      if (shape === 'global') Product.belongsTo(Currency, { foreignKey: 'currency_code' });
      const err = await t.throwsAsync(() => sequelize.sync(), { instanceOf: MultitenantError });
      t.is(err?.model, 'Product', shape);
      t.regex(
        err?.message ?? '',
        shape === 'global'
          ? /Product\.currency_code references currencies \(Currency\), a global model that is not a reference table: .* referenceTable: true/
          : /unique key \(sku\) does not include the tenant column store_id; Citus rejects it .* Make it \(store_id, sku\)/,
      );
      t.deepEqual(ddl(), [], shape);
      t.deepEqual(await tables(), [], shape);
    } finally {
      await sequelize.close();
    }
  }
});

citusOnly('tables that existed before (plain Sequelize, a sync that failed part-way) are distributed by the next sync', async (t) => {
  const { sequelize, schema, distributed } = await fresh(t);
  const define = (s: Sequelize) => {
    // an explicit schema: Sequelize then sees the tables as existing and skips CREATE TABLE
    const Store = s.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id', schema });
    const Product = s.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id', schema });
    const Purchase = s.define(
      'Purchase',
      { id: id(), store_id: tenant(), product_id: { type: DataTypes.BIGINT, allowNull: false } },
      { tableName: 'purchases', tenantKey: 'store_id', schema },
    );
    Purchase.belongsTo(Product, { foreignKey: 'product_id' });
    return { Store, Product, Purchase };
  };
  const plain = new Sequelize(t.context.db.url, { logging: false });
  define(plain);
  await plain.sync();
  await plain.close();
  t.deepEqual(await distributed(), []);
  try {
    multitenant(sequelize, { notice: false });
    define(sequelize);
    await sequelize.sync();
    const rows = await distributed();
    t.deepEqual(
      rows.map((r) => [r.t, r.m]),
      [
        ['products', 'h'],
        ['purchases', 'h'],
        ['stores', 'h'],
      ],
    );
    t.is(new Set(rows.map((r) => r.g)).size, 1, 'colocated');
    const [keys] = await sequelize.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'purchases'::regclass AND contype = 'f'`,
    );
    t.true(
      (keys as Array<{ def: string }>).some((k) => /^FOREIGN KEY \(store_id, product_id\) REFERENCES products\(store_id, id\)/.test(k.def)),
    );
    await sequelize.sync(); // and again: nothing to do, nothing fails
  } finally {
    await sequelize.close();
  }
});

citusOnly('a tenant column of another type (text org beside bigint stores) gets a colocation group of its own', async (t) => {
  const { sequelize, distributed } = await fresh(t);
  try {
    multitenant(sequelize, { notice: false });
    sequelize.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id' });
    sequelize.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id' });
    sequelize.define(
      'Document',
      { id: id(), org: { type: DataTypes.STRING, primaryKey: true, allowNull: false } },
      { tableName: 'documents', tenantKey: 'org' },
    );
    await sequelize.sync();
    const rows = await distributed();
    const group = (name: string) => rows.find((r) => r.t === name)?.g;
    t.is(group('products'), group('stores'));
    t.truthy(group('documents'));
    t.not(group('documents'), group('stores'));
  } finally {
    await sequelize.close();
  }
});

citusOnly('createDistributedTable and undistributeTable validate first and name the fix', async (t) => {
  const { sequelize, ddl } = await fresh(t);
  const qi = sequelize.getQueryInterface();
  try {
    await t.throwsAsync(() => createDistributedTable(qi, 'nowhere', 'store_id', { notice: false }), {
      instanceOf: MultitenantError,
      message: /^nowhere\.createDistributedTable: table nowhere does not exist: create it first; nothing was changed/,
    });
    await sequelize.query('CREATE TABLE stores (id bigint PRIMARY KEY)');
    await sequelize.query('CREATE TABLE products (id bigint, store_id bigint, PRIMARY KEY (store_id, id))');
    await t.throwsAsync(() => createDistributedTable(qi, 'products', 'shop_id', { notice: false }), {
      message: /table products has no column shop_id to distribute on/,
    });
    await t.throwsAsync(() => createDistributedTable(qi, 'products', 'store_id', { colocateWith: 'stores', notice: false }), {
      message: /colocateWith stores is not a distributed table: distribute it first/,
    });
    t.false(ddl().some((s) => /create_distributed_table/.test(s)));
    await sequelize.query('CREATE TABLE plain_ids (id bigint PRIMARY KEY, sku text UNIQUE)');
    // a refusal from Citus itself comes back as a MultitenantError with Citus' reason
    await t.throwsAsync(() => createDistributedTable(qi, 'plain_ids', 'sku', { notice: false }), {
      instanceOf: MultitenantError,
      message: /Citus refused SELECT create_distributed_table\('"plain_ids"', 'sku', colocate_with => 'none'\): .*(unique|primary)/i,
    });
  } finally {
    await sequelize.close();
  }
});

test.serial('the migration example of the Citus guide: up builds the schema, down takes it back, up again works', async (t) => {
  const { sequelize, tables, distributed } = await fresh(t);
  const context = sequelize.getQueryInterface();
  try {
    await up({ context });
    t.deepEqual(await tables(), ['countries', 'products', 'purchases', 'stores']);
    if (onCitus)
      t.deepEqual(
        (await distributed()).map((r) => [r.t, r.m]),
        [
          ['countries', 'n'],
          ['products', 'h'],
          ['purchases', 'h'],
          ['stores', 'h'],
        ],
      );
    const [[store]] = (await sequelize.query('INSERT INTO stores (name) VALUES ($1) RETURNING id', { bind: ['a'] })) as [
      Array<{ id: string }>,
      unknown,
    ];
    await t.throwsAsync(() => sequelize.query(`INSERT INTO purchases (store_id, product_id) VALUES (${store?.id}, 999)`), {
      message: /violates foreign key constraint/,
    });
    await down({ context });
    t.deepEqual(await tables(), []);
    await up({ context });
    t.deepEqual(await tables(), ['countries', 'products', 'purchases', 'stores']);
    // undistributing alone a table joined by a foreign key is refused before any statement, naming the fix
    if (onCitus)
      await t.throwsAsync(() => undistributeTable(context, 'purchases'), {
        instanceOf: MultitenantError,
        message: /purchases is joined by foreign keys .*: pass \{ cascadeViaForeignKeys: true \}/,
      });
  } finally {
    await sequelize.close();
  }
});

test('the Citus guide shows the migration example as it is in examples/', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const readme = await readFile('docs/citus.md', 'utf8');
  const file = await readFile('examples/migrations/20261127-stores.ts', 'utf8');
  t.true(readme.includes(file.slice(file.indexOf('import { DataTypes'))));
});
