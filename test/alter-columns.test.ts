// `sync({ alter: true })` and `Model.sync({ alter: true })` over a database that drifted from the models in
// every ordinary way — a column's type, NULL and default, a column the models lack, one the table lost —
// bring it back and keep what the library made: the composite keys, the tenant foreign keys, the rows,
// with `rls: true` the policies, and on Citus (npm run test:citus) the distribution and its one colocation
// group. Citus takes one ALTER per message (Sequelize's changeColumn sends several) and no ALTER at all
// of the distribution column: the no-op ones are left out, a real change is refused before any DDL.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, type Model, type ModelStatic, type Options, QueryTypes, Sequelize } from 'sequelize';
import { MultitenantError, multitenant, withoutTenant, withTenant } from '../src/index';
import { createTestDatabase, onCitus } from './helpers/db';
import { createRlsDatabase, reachesTheDatabase } from './helpers/rls';

const test = anyTest as TestFn;
// biome-ignore lint/suspicious/noExplicitAny: models of any shape
type AnyModel = ModelStatic<Model<any, any>>;

interface Setup {
  sequelize: Sequelize;
  plain: Sequelize;
  sent: string[];
  schema: string | undefined;
  models: (productExtra?: Record<string, unknown>) => { Store: AnyModel; Product: AnyModel; Purchase: AnyModel };
  close(): Promise<void>;
}

async function setup(rls: boolean): Promise<Setup> {
  const db: { url: string; maxConnections: number; drop(): Promise<void>; connectOptions?: () => Partial<Options> } = rls
    ? await createRlsDatabase()
    : await createTestDatabase();
  const extra = db.connectOptions?.() ?? {};
  const sent: string[] = [];
  const sequelize = new Sequelize(db.url, { ...extra, logging: (sql: string) => void sent.push(sql), pool: { max: db.maxConnections } });
  multitenant(sequelize, { notice: false, rls, ...reachesTheDatabase });
  // catalog reads and the drift's DDL on a connection of their own — but the embedded PGlite serves one
  // connection at a time: there, the instance's own
  const plain = db.maxConnections > 1 ? new Sequelize(db.url, { ...extra, logging: false, pool: { max: 1 } }) : sequelize;
  const [[{ name }]] = (await plain.query('SELECT current_schema() AS name')) as [[{ name: string }], unknown];
  // Sequelize's alter looks a table up under 'public' unless the model names its schema (Citus runs use one per file)
  const schema = name === 'public' ? undefined : name;
  const big = (extra: Record<string, unknown> = {}) => ({ type: DataTypes.BIGINT, ...extra });
  const options = (tableName: string, tenantKey: string) => ({ tableName, tenantKey, timestamps: false, ...(schema ? { schema } : {}) });
  return {
    sequelize,
    plain,
    sent,
    schema,
    models: (productExtra = {}) => {
      const Store = sequelize.define(
        'Store',
        { id: big({ primaryKey: true, autoIncrement: true }), name: DataTypes.STRING },
        options('stores', 'id'),
      );
      const Product = sequelize.define(
        'Product',
        {
          id: big({ primaryKey: true }),
          store_id: big({ primaryKey: true }),
          name: DataTypes.STRING,
          price: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
          ...productExtra,
        },
        options('products', 'store_id'),
      );
      const Purchase = sequelize.define(
        'Purchase',
        { id: big({ primaryKey: true }), store_id: big({ primaryKey: true }), product_id: big(), qty: DataTypes.INTEGER },
        options('purchases', 'store_id'),
      );
      Product.belongsTo(Store, { foreignKey: 'store_id' });
      Purchase.belongsTo(Product, { foreignKey: 'product_id' });
      return { Store, Product, Purchase };
    },
    async close() {
      await sequelize.close();
      if (plain !== sequelize) await plain.close();
      await db.drop();
    },
  };
}

const q = (schema: string | undefined, table: string) => (schema ? `"${schema}"."${table}"` : `"${table}"`);

/** Columns as the catalog holds them: type (with length), NULL, default. */
async function columns(plain: Sequelize, table: string) {
  return plain.query(
    `SELECT column_name AS c, data_type || coalesce('(' || character_maximum_length || ')', '') AS type, is_nullable AS nullable, column_default AS def
       FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
    { bind: [table], type: QueryTypes.SELECT },
  );
}
async function constraints(plain: Sequelize, table: string) {
  const found = (await plain.query(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype IN ('p', 'f') ORDER BY 1`,
    { bind: [table], type: QueryTypes.SELECT },
  )) as Array<{ def: string }>;
  return found.map((r) => r.def);
}

for (const rls of [false, true]) {
  test.serial(
    `sync({ alter }) and Model.sync({ alter }) bring drifted columns back and keep keys, rows${rls ? ', policies' : ''}${onCitus ? ', distribution' : ''} (rls ${rls})`,
    async (t) => {
      const s = await setup(rls);
      try {
        const { Store, Product, Purchase } = s.models();
        await s.sequelize.sync();
        const [acme, globex] = (await withoutTenant(() => Store.bulkCreate([{ name: 'acme' }, { name: 'globex' }]))) as [Model, Model];
        await withTenant(acme, () => Product.create({ id: 1, name: 'anvil' }));
        await withTenant(globex, () => Product.create({ id: 1, name: 'hammock' }));
        await withTenant(acme, () => Purchase.create({ id: 1, product_id: 1, qty: 3 }));
        const keysBefore = [await constraints(s.plain, 'products'), await constraints(s.plain, 'purchases')];
        // the database drifts from the models
        for (const sql of [
          `ALTER TABLE ${q(s.schema, 'products')} ALTER COLUMN name TYPE varchar(10)`,
          `ALTER TABLE ${q(s.schema, 'products')} ALTER COLUMN name SET DEFAULT 'x'`,
          `ALTER TABLE ${q(s.schema, 'products')} ALTER COLUMN name SET NOT NULL`,
          `ALTER TABLE ${q(s.schema, 'products')} ADD COLUMN gone text`,
          `ALTER TABLE ${q(s.schema, 'products')} DROP COLUMN price`,
          `ALTER TABLE ${q(s.schema, 'purchases')} ALTER COLUMN qty TYPE bigint`,
        ])
          await s.plain.query(sql);
        s.sent.length = 0;
        await s.sequelize.sync({ alter: true });
        const altered = [...s.sent];
        await Product.sync({ alter: true });
        t.deepEqual(await columns(s.plain, 'products'), [
          { c: 'id', type: 'bigint', nullable: 'NO', def: null },
          { c: 'store_id', type: 'bigint', nullable: 'NO', def: null },
          { c: 'name', type: 'character varying(255)', nullable: 'YES', def: null },
          { c: 'price', type: 'integer', nullable: 'NO', def: '0' },
        ]);
        t.like(
          ((await columns(s.plain, 'purchases')) as Array<{ c: string }>).find((c) => c.c === 'qty'),
          { type: 'integer' },
        );
        t.deepEqual(
          [await constraints(s.plain, 'products'), await constraints(s.plain, 'purchases')],
          keysBefore,
          'keys and tenant foreign keys kept',
        );
        t.true(keysBefore[1]?.some((d) => /^FOREIGN KEY \(store_id, product_id\) REFERENCES .*products\(store_id, id\)/.test(d)));
        t.deepEqual(
          (await withTenant(acme, () => Product.findAll())).map((p) => [p.get('name'), p.get('price')]),
          [['anvil', 0]],
        );
        t.deepEqual(
          (await withTenant(globex, () => Product.findAll())).map((p) => p.get('name')),
          ['hammock'],
        );
        if (rls) {
          const policies = await s.plain.query(
            `SELECT c.relname AS t, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, count(p.polname)::int AS n
             FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE c.relname IN ('products', 'purchases') AND c.relnamespace = current_schema()::regnamespace GROUP BY 1, 2, 3 ORDER BY 1`,
            { type: QueryTypes.SELECT },
          );
          t.deepEqual(policies, [
            { t: 'products', enabled: true, forced: true, n: 1 },
            { t: 'purchases', enabled: true, forced: true, n: 1 },
          ]);
        }
        if (onCitus) {
          const dist = await s.plain.query(
            `SELECT c.relname AS t, column_to_column_name(logicalrelid, partkey) AS col, colocationid AS g
             FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
            WHERE c.relname IN ('stores', 'products', 'purchases') AND c.relnamespace = current_schema()::regnamespace ORDER BY 1`,
            { type: QueryTypes.SELECT },
          );
          t.deepEqual(
            (dist as Array<{ t: string; col: string }>).map((d) => [d.t, d.col]),
            [
              ['products', 'store_id'],
              ['purchases', 'store_id'],
              ['stores', 'id'],
            ],
          );
          t.is(new Set((dist as Array<{ g: number }>).map((d) => d.g)).size, 1, 'one colocation group');
          // one ALTER per message, none of the distribution column
          const ddl = altered.filter((x) => /\bALTER TABLE\b/.test(x));
          t.true(ddl.length > 0);
          t.deepEqual(
            ddl.filter((x) => (x.match(/\bALTER TABLE\b/g) ?? []).length > 1),
            [],
          );
          t.deepEqual(
            ddl.filter((x) => /ALTER COLUMN "store_id"/.test(x)),
            [],
          );
        }
      } finally {
        await s.close();
      }
    },
  );
}

(onCitus ? test.serial : test.skip)(
  'Citus: changeColumn of a distribution column — no-op statements left out, a real change refused before any DDL',
  async (t) => {
    const s = await setup(false);
    try {
      s.models();
      await s.sequelize.sync();
      const qi = s.sequelize.getQueryInterface();
      const table = s.schema ? { tableName: 'products', schema: s.schema } : 'products';
      // (sync({ alter }) skips primary-key columns; a migration's changeColumn, or a through table's tenant
      // column, reaches the distribution column) — as it is: nothing to send, and nothing sent
      s.sent.length = 0;
      await qi.changeColumn(table, 'store_id', { type: DataTypes.BIGINT, allowNull: false });
      t.deepEqual(
        s.sent.filter((x) => /\bALTER TABLE\b/.test(x)),
        [],
      );
      // a default on it: refused, nothing sent
      const err = await t.throwsAsync(
        () => qi.changeColumn(table, 'store_id', { type: DataTypes.BIGINT, allowNull: false, defaultValue: 7 }),
        {
          instanceOf: MultitenantError,
        },
      );
      t.regex(
        err?.message ?? '',
        /Citus cannot change products\.store_id, the column the table is distributed on \(SET DEFAULT 7\).*undistribute_table/,
      );
      t.deepEqual(
        s.sent.filter((x) => /\bALTER TABLE\b/.test(x)),
        [],
      );
      t.like(
        ((await columns(s.plain, 'products')) as Array<{ c: string }>).find((c) => c.c === 'store_id'),
        { type: 'bigint', def: null },
      );
      // another column of the same table: one ALTER per message, in one transaction
      s.sent.length = 0;
      await qi.changeColumn(table, 'name', { type: DataTypes.STRING(40), allowNull: true });
      const ddl = s.sent.filter((x) => /\bALTER TABLE\b/.test(x));
      t.true(ddl.length >= 2, ddl.join('\n'));
      t.true(ddl.every((x) => (x.match(/\bALTER TABLE\b/g) ?? []).length === 1));
      t.like(
        ((await columns(s.plain, 'products')) as Array<{ c: string }>).find((c) => c.c === 'name'),
        { type: 'character varying(40)' },
      );
    } finally {
      await s.close();
    }
  },
);
