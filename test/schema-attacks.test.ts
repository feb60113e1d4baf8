// What an adversarial review of the schema layer found (given only the package and the README), each a
// test: tables of one name in two schemas, a through model without tenantKey, two tenant dimensions,
// odd action spelling, tables that exist without the tenant
// column; on Citus: tables Citus took in as local tables, tables distributed the wrong way, a 1:1 table
// keyed by the tenant column, a reference table keyed to a tenant table, helpers on local tables,
// Model.sync() alone. Citus-only tests are reported as skipped without CITUS_URL.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import { addTenantForeignKey, createDistributedTable, createReferenceTable, MultitenantError, multitenant } from '../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

const test = anyTest as TestFn<{ db: TestDatabase }>;
const citusOnly = onCitus ? test.serial : test.skip;
const pgOnly = onCitus ? test.skip : test.serial;

test.before(async (t) => {
  t.context = { db: await createTestDatabase() };
});
test.after.always(async (t) => t.context?.db?.drop());

const id = () => ({ type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true });
const tenant = () => ({ type: DataTypes.BIGINT, primaryKey: true, allowNull: false });

/** A fresh schema and a Sequelize on it recording every statement. */
async function fresh(t: { context: { db: TestDatabase } }, install = true, reset = true) {
  const { db } = t.context;
  const sent: string[] = [];
  const sequelize = new Sequelize(db.url, {
    logging: (sql) => void sent.push(sql),
    pool: { max: db.maxConnections },
    define: { timestamps: false },
  });
  const [[row]] = (await sequelize.query('SELECT current_schema() AS name')) as [Array<{ name: string }>, unknown];
  const schema = row?.name as string;
  if (reset) {
    await sequelize.query(`DROP SCHEMA "${schema}" CASCADE`);
    await sequelize.query(`CREATE SCHEMA "${schema}"`);
  }
  if (install) multitenant(sequelize, { notice: false });
  sent.length = 0;
  const ddl = () => sent.filter((s) => /\b(CREATE|ALTER|DROP)\b|create_distributed_table|create_reference_table/.test(s));
  const keys = async (table: string) => {
    const [rows] = await sequelize.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'f' ORDER BY 1`,
      { bind: [table] },
    );
    return (rows as Array<{ def: string }>).map((r) => r.def);
  };
  return { sequelize, schema, sent, ddl, keys };
}

const refusesCrossTenant = async (
  t: { regex(s: string, r: RegExp): void; throwsAsync: (f: () => Promise<unknown>) => Promise<unknown> },
  s: Sequelize,
  sql: string,
) => {
  const err = (await t.throwsAsync(() => s.query(sql))) as Error | undefined;
  t.regex(String(err?.message), /violates foreign key constraint/);
};

test.serial('tables of one name in two schemas: each gets its tenant key, both refuse a cross-tenant row', async (t) => {
  const { sequelize, schema, keys } = await fresh(t);
  try {
    await sequelize.query(
      'DROP SCHEMA IF EXISTS att_eu CASCADE; DROP SCHEMA IF EXISTS att_us CASCADE; CREATE SCHEMA att_eu; CREATE SCHEMA att_us',
    );
    sequelize.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id', schema });
    for (const s of ['att_eu', 'att_us']) {
      const P = sequelize.define(
        `Product_${s}`,
        { id: id(), store_id: tenant() },
        { tableName: 'products', schema: s, tenantKey: 'store_id' },
      );
      const U = sequelize.define(
        `Purchase_${s}`,
        { id: id(), store_id: tenant() },
        { tableName: 'purchases', schema: s, tenantKey: 'store_id' },
      );
      P.hasMany(U, { foreignKey: 'product_id' });
    }
    await sequelize.sync();
    for (const s of ['att_eu', 'att_us']) {
      t.deepEqual(await keys(`${s}.purchases`), [`FOREIGN KEY (store_id, product_id) REFERENCES ${s}.products(store_id, id)`]);
      await sequelize.query(`INSERT INTO ${s}.products (id, store_id) VALUES (5, 2)`);
      await refusesCrossTenant(t, sequelize, `INSERT INTO ${s}.purchases (id, store_id, product_id) VALUES (1, 1, 5)`);
    }
  } finally {
    await sequelize.query('DROP SCHEMA IF EXISTS att_eu CASCADE; DROP SCHEMA IF EXISTS att_us CASCADE');
    await sequelize.close();
  }
});

test.serial('belongsToMany between tenant models through a model without tenantKey: refused before any DDL', async (t) => {
  const { sequelize, ddl } = await fresh(t);
  try {
    const Product = sequelize.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id' });
    const Tag = sequelize.define('Tag', { id: id(), store_id: tenant() }, { tableName: 'tags', tenantKey: 'store_id' });
    const PT = sequelize.define('PT', { id: id() }, { tableName: 'product_tags' });
    Product.belongsToMany(Tag, { through: PT, foreignKey: 'product_id', otherKey: 'tag_id' });
    const err = await t.throwsAsync(() => sequelize.sync(), { instanceOf: MultitenantError });
    t.is(err?.model, 'PT');
    t.regex(err?.message ?? '', /PT, the through model of Product\.belongsToMany\(Tag\), has no tenantKey/);
    t.deepEqual(ddl(), []);
  } finally {
    await sequelize.close();
  }
});

test.serial('an association between two tenant dimensions (bigint store_id → text org) is refused before any DDL', async (t) => {
  const { sequelize, ddl } = await fresh(t);
  try {
    const Doc = sequelize.define(
      'Doc',
      { id: id(), org: { type: DataTypes.STRING, primaryKey: true, allowNull: false } },
      { tableName: 'docs', tenantKey: 'org' },
    );
    const Product = sequelize.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id' });
    Product.belongsTo(Doc, { foreignKey: 'doc_id' });
    const err = await t.throwsAsync(() => sequelize.sync(), { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', /joins two tenant dimensions .*constraints: false/);
    t.deepEqual(ddl(), []);
  } finally {
    await sequelize.close();
  }
});

test.serial('actions are read as PostgreSQL reads them: odd spacing and case cannot slip a refused action through', async (t) => {
  for (const [written, kind] of [
    ['set  null', 'onDelete'],
    [' Set Null ', 'onDelete'],
    ['CASCADE ', 'onUpdate'],
    ['explode', 'onDelete'],
  ] as const) {
    const { sequelize, ddl } = await fresh(t);
    try {
      const Product = sequelize.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id' });
      const Purchase = sequelize.define('Purchase', { id: id(), store_id: tenant() }, { tableName: 'purchases', tenantKey: 'store_id' });
      Product.hasMany(Purchase, { foreignKey: 'product_id', [kind]: written });
      const err = await t.throwsAsync(() => sequelize.sync(), { instanceOf: MultitenantError }, written);
      t.regex(err?.message ?? '', written === 'explode' ? /is not a foreign key action/ : /Citus rejects/, written);
      t.deepEqual(ddl(), [], written);
    } finally {
      await sequelize.close();
    }
  }
});

/** Products and tags through product_tags, tenant models keyed by store_id. */
const defineTagged = (s: Sequelize) => {
  const Product = s.define(
    'Product',
    { id: id(), store_id: { type: DataTypes.BIGINT, allowNull: false } },
    { tableName: 'products', tenantKey: 'store_id' },
  );
  const Tag = s.define(
    'Tag',
    { id: id(), store_id: { type: DataTypes.BIGINT, allowNull: false } },
    { tableName: 'tags', tenantKey: 'store_id' },
  );
  Product.belongsToMany(Tag, { through: 'product_tags', foreignKey: 'product_id', otherKey: 'tag_id' });
};

/**
 * The tables made by plain Sequelize first (product_tags (product_id, tag_id): no store_id), then an
 * instance with the plugin and the same models. One connection at a time (the embedded PGlite takes one).
 */
async function staleThroughTable(t: { context: { db: TestDatabase } }) {
  await (await fresh(t, false)).sequelize.close();
  const plain = new Sequelize(t.context.db.url, { logging: false, define: { timestamps: false } });
  defineTagged(plain);
  await plain.sync();
  await plain.close();
  const made = await fresh(t, false, false);
  multitenant(made.sequelize, { notice: false });
  defineTagged(made.sequelize);
  return made;
}

const TAGGED_KEYS = [
  'FOREIGN KEY (store_id, product_id) REFERENCES products(store_id, id) ON DELETE CASCADE',
  'FOREIGN KEY (store_id, tag_id) REFERENCES tags(store_id, id) ON DELETE CASCADE',
];

pgOnly('a table that exists without the tenant column: sync refuses before any DDL; sync({ alter: true }) converges', async (t) => {
  const { sequelize, ddl, keys } = await staleThroughTable(t);
  try {
    const err = await t.throwsAsync(() => sequelize.sync(), { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', /table product_tags exists without the tenant column store_id: sync does not add columns/);
    t.deepEqual(ddl(), []);
    await sequelize.sync({ alter: true });
    const defs = await keys('product_tags');
    for (const key of TAGGED_KEYS) t.true(defs.includes(key), defs.join('\n'));
  } finally {
    await sequelize.close();
  }
});

pgOnly(
  'a table that exists without the tenant column: sync({ force: true }) drops it and makes it again, with the tenant keys',
  async (t) => {
    const { sequelize, keys } = await staleThroughTable(t);
    try {
      // force drops the tables first: the missing tenant column is no reason to refuse
      await sequelize.sync({ force: true });
      const defs = await keys('product_tags');
      for (const key of TAGGED_KEYS) t.true(defs.includes(key), defs.join('\n'));
    } finally {
      await sequelize.close();
    }
  },
);

citusOnly('tables Citus took in as local tables (a key to a reference table) are distributed by sync', async (t) => {
  const { sequelize, schema } = await fresh(t, false);
  const define = (s: Sequelize) => {
    s.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id', schema });
    const Country = s.define(
      'Country',
      { code: { type: DataTypes.STRING, primaryKey: true } },
      { tableName: 'countries', referenceTable: true, schema },
    );
    const Product = s.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id', schema });
    Product.belongsTo(Country, { foreignKey: 'country_code' });
  };
  const plain = new Sequelize(t.context.db.url, { logging: false, define: { timestamps: false } });
  define(plain);
  await plain.sync();
  await plain.close();
  try {
    multitenant(sequelize, { notice: false });
    define(sequelize);
    await sequelize.sync();
    const [rows] = await sequelize.query(
      `SELECT logicalrelid::regclass::text AS t, partmethod AS m, repmodel AS r FROM pg_dist_partition WHERE logicalrelid::regclass::text IN ('stores', 'countries', 'products') ORDER BY 1`,
    );
    t.deepEqual(rows, [
      { t: 'countries', m: 'n', r: 't' },
      { t: 'products', m: 'h', r: 's' },
      { t: 'stores', m: 'h', r: 's' },
    ]);
  } finally {
    await sequelize.close();
  }
});

citusOnly('a table distributed the wrong way: sync refuses naming the statement; the helpers refuse too', async (t) => {
  const { sequelize } = await fresh(t);
  const qi = sequelize.getQueryInterface();
  try {
    await sequelize.query('CREATE TABLE stores (id bigint PRIMARY KEY)');
    await sequelize.query('CREATE TABLE products (id bigint, store_id bigint, PRIMARY KEY (store_id, id))');
    await sequelize.query(`SELECT create_distributed_table('stores', 'id')`);
    await sequelize.query(`SELECT create_distributed_table('products', 'id')`);
    sequelize.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id' });
    sequelize.define('Product', { id: id(), store_id: tenant() }, { tableName: 'products', tenantKey: 'store_id' });
    await t.throwsAsync(() => sequelize.sync(), {
      instanceOf: MultitenantError,
      message: /products is distributed on id, not hash-distributed on its tenant column store_id: .*alter_distributed_table/,
    });
    await t.throwsAsync(() => createDistributedTable(qi, 'products', 'store_id', { colocateWith: 'stores', notice: false }), {
      instanceOf: MultitenantError,
      message: /products is already distributed on id: SELECT undistribute_table/,
    });
    await t.throwsAsync(() => createReferenceTable(qi, 'stores', { notice: false }), {
      instanceOf: MultitenantError,
      message: /stores is already distributed on id/,
    });
  } finally {
    await sequelize.close();
  }
});

citusOnly('a 1:1 table keyed by the tenant column does not hide a tenant column of another type', async (t) => {
  const { sequelize, ddl } = await fresh(t);
  try {
    sequelize.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id' });
    sequelize.define(
      'StoreSettings',
      { store_id: { type: DataTypes.BIGINT, primaryKey: true }, theme: DataTypes.STRING },
      { tableName: 'store_settings', tenantKey: 'store_id' },
    );
    sequelize.define(
      'Product',
      { id: id(), store_id: { type: DataTypes.INTEGER, primaryKey: true } },
      { tableName: 'products', tenantKey: 'store_id' },
    );
    await t.throwsAsync(() => sequelize.sync(), {
      instanceOf: MultitenantError,
      message: /products\.store_id is INTEGER but stores's key is BIGINT/,
    });
    t.deepEqual(ddl(), []);
  } finally {
    await sequelize.close();
  }
});

citusOnly('a reference table keyed to a tenant table is refused before any DDL', async (t) => {
  const { sequelize, ddl } = await fresh(t);
  try {
    const Store = sequelize.define('Store', { id: id() }, { tableName: 'stores', tenantKey: 'id' });
    const Country = sequelize.define(
      'Country',
      { code: { type: DataTypes.STRING, primaryKey: true } },
      { tableName: 'countries', referenceTable: true },
    );
    Country.belongsTo(Store, { foreignKey: 'store_id' });
    await t.throwsAsync(() => sequelize.sync(), {
      instanceOf: MultitenantError,
      message: /Country\.store_id references Store, a distributed tenant table, from a reference table/,
    });
    t.deepEqual(ddl(), []);
  } finally {
    await sequelize.close();
  }
});

citusOnly('addTenantForeignKey with a parent still local, and Model.sync() alone with a bad key: refused before any DDL', async (t) => {
  const { sequelize, ddl } = await fresh(t);
  const qi = sequelize.getQueryInterface();
  try {
    await sequelize.query('CREATE TABLE stores (id bigint PRIMARY KEY)');
    await sequelize.query('CREATE TABLE products (id bigint, store_id bigint, PRIMARY KEY (store_id, id))');
    await sequelize.query('CREATE TABLE purchases (id bigint, store_id bigint, product_id bigint, PRIMARY KEY (store_id, id))');
    await sequelize.query(`SELECT create_distributed_table('stores', 'id')`);
    await sequelize.query(`SELECT create_distributed_table('purchases', 'store_id', colocate_with => 'stores')`);
    const sentBefore = ddl().length;
    await t.throwsAsync(
      () =>
        addTenantForeignKey(qi, 'purchases', {
          tenantColumn: 'store_id',
          columns: ['product_id'],
          references: { table: 'products', columns: ['id'] },
        }),
      { instanceOf: MultitenantError, message: /table products is not distributed: distribute both tables/ },
    );
    t.is(ddl().length, sentBefore, 'no unique key added to products');
    const Bad = sequelize.define(
      'Bad',
      { id: id(), store_id: { type: DataTypes.BIGINT, allowNull: false } },
      { tableName: 'bads', tenantKey: 'store_id' },
    );
    await t.throwsAsync(() => Bad.sync(), {
      instanceOf: MultitenantError,
      message: /primary key \(id\) does not include the tenant column store_id/,
    });
    const [[found]] = (await sequelize.query(`SELECT to_regclass('bads')::text AS t`)) as [Array<{ t: string | null }>, unknown];
    t.is(found?.t, null, 'bads was not created');
  } finally {
    await sequelize.close();
  }
});
