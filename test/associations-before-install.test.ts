// Associations made before multitenant(): what the library reads from them when nothing recorded how
// they were made. The library records each association's actions as it is made, through the association
// factories of Sequelize's base Model, which the first multitenant() of a process wraps — so in a test
// file where an earlier test installed the plugin, "made before" is recorded after all. Here every case's
// models and associations are made in test.before, before this file's (this process's) first
// multitenant(), and test.before checks the factories are still Sequelize's own.
//
// A key made by a belongsTo and a hasMany takes the actions of the first of them, as in plain Sequelize
// (the first association writes the column's REFERENCES). Made before the install, nothing recorded which
// was first: with a one-column primary key on the parent Sequelize's column says it; with a composite one
// (no REFERENCES written) the key takes the action that deletes nothing, and a notice says so.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, Model, type ModelStatic, Sequelize } from 'sequelize';
import { multitenant } from '../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

type Order = 'belongsTo first' | 'hasMany first';
interface Case {
  sequelize: Sequelize;
  schema: string;
  sent: string[];
}
const test = anyTest as TestFn<{ db: TestDatabase; cases: Map<string, Case> }>;
const pgOnly = onCitus ? test.skip : test.serial;

const factories = { belongsTo: Model.belongsTo, hasMany: Model.hasMany };
const id = () => ({ type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true });
const tenant = () => ({ type: DataTypes.BIGINT, primaryKey: true, allowNull: false });

/** Product and Purchase (purchases.product_id NOT NULL), the store_id in the primary key or beside it. */
function pairModels(s: Sequelize, schema: string, composite: boolean) {
  const store = () => (composite ? tenant() : { type: DataTypes.BIGINT, allowNull: false });
  const Product = s.define('Product', { id: id(), store_id: store() }, { schema, tableName: 'products', tenantKey: 'store_id' });
  const Purchase = s.define(
    'Purchase',
    { id: id(), store_id: store(), product_id: { type: DataTypes.BIGINT, allowNull: false } },
    { schema, tableName: 'purchases', tenantKey: 'store_id' },
  );
  return { Product, Purchase };
}
function associate(order: Order, Product: ModelStatic<Model>, Purchase: ModelStatic<Model>, hasMany: { onDelete?: string } = {}): void {
  const belongs = () => Purchase.belongsTo(Product, { foreignKey: 'product_id' });
  const many = () => Product.hasMany(Purchase, { foreignKey: 'product_id', ...hasMany });
  for (const make of order === 'belongsTo first' ? [belongs, many] : [many, belongs]) make();
}
const key = (schema: string, actions = '') => `FOREIGN KEY (store_id, product_id) REFERENCES ${schema}.products(store_id, id)${actions}`;
/** What plain Sequelize's first association gives a NOT NULL key: belongsTo NO ACTION, hasMany CASCADE. */
const expected = (order: Order, schema: string) => key(schema, order === 'hasMany first' ? ' ON DELETE CASCADE' : '');

/** Every case, made before the first multitenant() of this process. */
const CASES: Record<string, (s: Sequelize, schema: string) => void> = {};
for (const order of ['belongsTo first', 'hasMany first'] as const) {
  for (const composite of [true, false]) {
    CASES[`${order}, composite ${composite}`] = (s, schema) => {
      const { Product, Purchase } = pairModels(s, schema, composite);
      associate(order, Product, Purchase);
    };
  }
  CASES[`${order}, composite, hasMany RESTRICT`] = (s, schema) => {
    const { Product, Purchase } = pairModels(s, schema, true);
    associate(order, Product, Purchase, { onDelete: 'RESTRICT' });
  };
}
CASES['belongsTo CASCADE, belongsToMany'] = (s, schema) => {
  const Product = s.define('Product', { id: id(), store_id: tenant() }, { schema, tableName: 'products', tenantKey: 'store_id' });
  const Purchase = s.define('Purchase', { id: id(), store_id: tenant() }, { schema, tableName: 'purchases', tenantKey: 'store_id' });
  Purchase.belongsTo(Product, { foreignKey: 'product_id', onDelete: 'CASCADE' });
  const Tag = s.define('Tag', { id: id(), store_id: tenant() }, { schema, tableName: 'tags', tenantKey: 'store_id' });
  Product.belongsToMany(Tag, { through: 'product_tags', foreignKey: 'product_id', otherKey: 'tag_id' });
};

test.before(async (t) => {
  const db = await createTestDatabase();
  const cases = new Map<string, Case>();
  t.context = { db, cases };
  const admin = new Sequelize(db.url, { logging: false });
  let n = 0;
  for (const [name, make] of Object.entries(CASES)) {
    const schema = `before_${n++}`;
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
    const sent: string[] = [];
    const sequelize = new Sequelize(db.url, {
      logging: (sql) => void sent.push(sql),
      pool: { max: 1 },
      define: { timestamps: false },
    });
    make(sequelize, schema);
    cases.set(name, { sequelize, schema, sent });
  }
  await admin.close();
  // what this file is about: no multitenant() has wrapped the association factories yet
  if (Model.belongsTo !== factories.belongsTo || Model.hasMany !== factories.hasMany) {
    throw new Error('the association factories were wrapped before the cases were made: they would be recorded, not read');
  }
});
test.after.always(async (t) => {
  for (const c of t.context?.cases?.values() ?? []) await c.sequelize.close();
  await t.context?.db?.drop();
});

/** The instance last used: closed before another connects (the embedded PGlite serves one connection). */
let open: Sequelize | undefined;
async function closeOpen(next?: Sequelize): Promise<void> {
  if (open && open !== next) await open.close();
  open = next;
}

/** Installs the plugin on a case made before it, and reads the foreign keys of one of its tables. */
async function installed(t: { context: { cases: Map<string, Case> } }, name: string, notice: ((message: string) => void) | false = false) {
  const c = t.context.cases.get(name) as Case;
  await closeOpen(c.sequelize);
  multitenant(c.sequelize, { notice });
  c.sent.length = 0;
  const keys = async (table: string) => {
    const [rows] = await c.sequelize.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'f' ORDER BY 1`,
      { bind: [`${c.schema}.${table}`] },
    );
    return (rows as Array<{ def: string }>).map((r) => r.def);
  };
  const ddl = () => c.sent.filter((s) => /\b(CREATE|ALTER|DROP)\b|create_distributed_table|create_reference_table/.test(s));
  return { ...c, keys, ddl };
}

pgOnly('belongsTo + hasMany on one key, one-column primary key: the first one made decides, read from Sequelize’s column', async (t) => {
  for (const order of ['belongsTo first', 'hasMany first'] as const) {
    const { sequelize, schema, keys } = await installed(t, `${order}, composite false`);
    await sequelize.sync();
    t.deepEqual(await keys('purchases'), [expected(order, schema)], order);
  }
});

test.serial(
  'belongsTo + hasMany on one key, composite primary key: nothing says which came first, the key deletes nothing and a notice says so',
  async (t) => {
    for (const order of ['belongsTo first', 'hasMany first'] as const) {
      const notices: string[] = [];
      const { sequelize, schema, keys } = await installed(t, `${order}, composite true`, (m) => void notices.push(m));
      await sequelize.sync();
      t.deepEqual(await keys('purchases'), [key(schema)], order);
      const said = notices.filter((m) => m.includes('made before multitenant()'));
      t.is(said.length, 1, `${order}: ${notices.join('\n')}`);
      t.regex(
        said[0] ?? '',
        /purchases \(store_id, product_id\) → products is the key of two associations made before multitenant\(\)/,
        order,
      );
      t.regex(said[0] ?? '', /BelongsTo Product\): ON DELETE NO ACTION.*HasMany Purchases\): ON DELETE CASCADE/, order);
      t.regex(
        said[0] ?? '',
        /the key gets ON DELETE NO ACTION ON UPDATE NO ACTION, which deletes nothing. To choose, write onDelete \(and onUpdate\) on the hasMany\/hasOne/,
        order,
      );
      // a second sync says nothing new
      await sequelize.sync();
      t.is(notices.filter((m) => m.includes('made before multitenant()')).length, 1, order);
    }
  },
);

test.serial(
  'belongsTo + hasMany on one key, composite primary key, onDelete written on the hasMany: that action, whichever came first',
  async (t) => {
    for (const order of ['belongsTo first', 'hasMany first'] as const) {
      const { sequelize, schema, keys } = await installed(t, `${order}, composite, hasMany RESTRICT`);
      await sequelize.sync();
      t.deepEqual(await keys('purchases'), [key(schema, ' ON DELETE RESTRICT')], order);
    }
  },
);

test.serial(
  'a CASCADE written on a belongsTo is kept; a through model Sequelize generated gets the tenant column and both keys',
  async (t) => {
    const { sequelize, schema, keys } = await installed(t, 'belongsTo CASCADE, belongsToMany');
    await sequelize.sync();
    t.deepEqual(await keys('purchases'), [key(schema, ' ON DELETE CASCADE')]);
    t.deepEqual(await keys('product_tags'), [
      `FOREIGN KEY (store_id, product_id) REFERENCES ${schema}.products(store_id, id) ON DELETE CASCADE`,
      `FOREIGN KEY (store_id, tag_id) REFERENCES ${schema}.tags(store_id, id) ON DELETE CASCADE`,
    ]);
  },
);

test.serial('made after multitenant(): the first association made decides, on either primary key', async (t) => {
  for (const composite of onCitus ? [true] : [true, false]) {
    for (const order of ['belongsTo first', 'hasMany first'] as const) {
      const schema = `after_${composite ? 'c' : 'p'}_${order === 'hasMany first' ? 'h' : 'b'}`;
      const sequelize = new Sequelize(t.context.db.url, { logging: false, pool: { max: 1 }, define: { timestamps: false } });
      await closeOpen(sequelize);
      try {
        await sequelize.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
        multitenant(sequelize, { notice: false });
        const { Product, Purchase } = pairModels(sequelize, schema, composite);
        associate(order, Product, Purchase);
        await sequelize.sync();
        const [rows] = await sequelize.query(
          `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass('${schema}.purchases') AND contype = 'f'`,
        );
        t.deepEqual(
          (rows as Array<{ def: string }>).map((r) => r.def),
          [expected(order, schema)],
          `${order}, composite ${composite}`,
        );
      } finally {
        await sequelize.close();
      }
    }
  }
});
