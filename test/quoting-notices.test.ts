// The library's DDL names tables and columns as Sequelize's own SQL does (its query generator), and a
// notice is said once per instance.
import test from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { createReferenceTable, enableRowLevelSecurity, multitenant, withTenant } from '../src/index';
import { createTestDatabase, onCitus } from './helpers/db';

const serial = onCitus ? test.skip : test.serial;

serial('a schema-qualified, mixed-case, multibyte table: the keys and the policy name it exactly as Sequelize does', async (t) => {
  const db = await createTestDatabase();
  const sql: string[] = [];
  const sequelize = new Sequelize(db.url, {
    logging: (s) => sql.push(s.replace(/^Executing \([^)]*\): /, '')),
    pool: { max: db.maxConnections },
  });
  try {
    multitenant(sequelize, { notice: false });
    await sequelize.createSchema('Mixed Schéma', {});
    // (a fresh object per attribute: Sequelize writes `references` into the definition it is given)
    const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
    const Shop = sequelize.define(
      'Shop',
      { id: key(), name: DataTypes.STRING },
      { tableName: 'Shöps', schema: 'Mixed Schéma', tenantKey: 'id', timestamps: false },
    );
    const Shelf = sequelize.define(
      'Shelf',
      { id: key(), ShopId: key(), label: { type: DataTypes.STRING, unique: true } },
      { tableName: 'Shelves', schema: 'Mixed Schéma', tenantKey: 'ShopId', timestamps: false },
    );
    Shelf.belongsTo(Shop, { foreignKey: 'ShopId' });
    const Item = sequelize.define(
      'Item',
      { id: key(), ShopId: key(), ShelfId: DataTypes.BIGINT },
      { tableName: 'Itèms', schema: 'Mixed Schéma', tenantKey: 'ShopId', timestamps: false },
    );
    Item.belongsTo(Shelf, { foreignKey: 'ShelfId' });
    await sequelize.sync();
    const table = sequelize.getQueryInterface().queryGenerator as unknown as { quoteTable(t: unknown): string };
    const shelves = table.quoteTable(Shelf.getTableName());
    t.is(shelves, '"Mixed Schéma"."Shelves"');
    t.true(sql.some((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS ${shelves} `)));
    t.true(await enableRowLevelSecurity(sequelize, Shelf.getTableName() as never, { column: 'ShopId' }));
    t.true(sql.some((s) => s.startsWith(`ALTER TABLE ${shelves} ENABLE ROW LEVEL SECURITY`)));
    const keys = await sequelize.query<{ def: string }>(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid IN ('"Mixed Schéma"."Shelves"'::regclass, '"Mixed Schéma"."Itèms"'::regclass) AND contype IN ('f', 'u') ORDER BY 1`,
      { type: QueryTypes.SELECT },
    );
    t.deepEqual(
      keys.map((k) => k.def),
      [
        'FOREIGN KEY ("ShopId") REFERENCES "Mixed Schéma"."Shöps"(id) ON UPDATE CASCADE',
        'FOREIGN KEY ("ShopId", "ShelfId") REFERENCES "Mixed Schéma"."Shelves"("ShopId", id)',
        'UNIQUE (label)',
      ],
    );
    await withTenant(1, () => Shop.create({ id: 1, name: 'a' }));
    await withTenant(1, () => Shelf.create({ id: 1, label: 'top' }));
    t.is(await withTenant(1, () => Shelf.count()), 1);
    t.is(await withTenant(2, () => Shelf.count()), 0);
  } finally {
    await sequelize.close();
    await db.drop();
  }
});

serial('a notice is said once per instance: two syncs, one notice each', async (t) => {
  const db = await createTestDatabase();
  const notices: string[] = [];
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: db.maxConnections } });
  try {
    multitenant(sequelize, { notice: (m) => notices.push(m) });
    sequelize.define(
      'Plain',
      { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, store_id: DataTypes.INTEGER },
      { tenantKey: 'store_id' },
    );
    await sequelize.sync();
    await sequelize.sync();
    await sequelize.sync({ alter: true });
    await createReferenceTable(sequelize, 'Plains');
    await createReferenceTable(sequelize, 'Plains');
    const count = (re: RegExp) => notices.filter((n) => re.test(n)).length;
    t.is(count(/no citus extension in this database: tables are created/), 1);
    t.is(count(/createReferenceTable.*: no citus extension in this database/), 1);
    t.is(count(/primary key \(id\) does not include the tenant column store_id/), 1);
    t.is(notices.length, new Set(notices).size);
  } finally {
    await sequelize.close();
    await db.drop();
  }
});
