// A Sequelize connected to a fresh test database, the parity schema (two tenants holding the same
// primary keys), and every SQL statement captured through Sequelize's `logging` option.
import type { TestFn } from 'ava';
import { DataTypes, type Model, type ModelStatic, Sequelize } from 'sequelize';
import { type MultitenantOptions, multitenant, routerOnly, withoutTenant } from '../../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './db';

export const ORG_A = '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c';
export const ORG_B = '0b6a4e2d-8c3f-4f1e-b2a7-9c8d7e6f5a4b';

// biome-ignore lint/suspicious/noExplicitAny: test models of any shape
type AnyModel = ModelStatic<Model<any, any>>;

export interface Fixture {
  db: TestDatabase;
  sequelize: Sequelize;
  /** The options multitenant() was installed with. */
  options: MultitenantOptions;
  /** Every statement sent, without Sequelize's "Executing (...): " prefix, bind parameters shown in place. */
  sql: string[];
  Store: AnyModel;
  Product: AnyModel;
  Purchase: AnyModel;
  Category: AnyModel;
  Note: AnyModel;
  Review: AnyModel;
  Coupon: AnyModel;
  Org: AnyModel;
  Doc: AnyModel;
  Tag: AnyModel;
  ProductTag: AnyModel;
  Campaign: AnyModel;
  Ad: AnyModel;
  /** Empties every table and seeds the two tenants; clears `sql`. */
  reset(): Promise<void>;
  /** Rows of a table as the database holds them (raw SQL, unscoped), ordered (by default by its first two columns: the key). */
  rows(table: string, order?: string): Promise<Record<string, unknown>[]>;
  /** The statements sent while `fn` ran. */
  capture<T>(fn: () => Promise<T>): Promise<{ result: T; sql: string[] }>;
  close(): Promise<void>;
}

/** Shows bind parameters ($1, $2) in place, as literals, so that assertions read the values sent. */
function inlineBind(statement: string, bind: unknown[] | undefined): string {
  if (!Array.isArray(bind) || bind.length === 0) return statement;
  return statement.replace(/\$(\d+)/g, (whole, n: string) => {
    const value = bind[Number(n) - 1];
    if (value === undefined) return whole;
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    if (value === null) return 'NULL';
    return `'${String(value instanceof Date ? value.toISOString() : value).replace(/'/g, "''")}'`;
  });
}

/**
 * SEQUELIZE_MULTITENANT_AUDIT=throw|warn (read by the library itself): every instance whose options leave
 * `audit` out — the fixture's and every test's own — sends its statements through the auditor.
 */
export const auditMode = (process.env.SEQUELIZE_MULTITENANT_AUDIT || 'off') as NonNullable<MultitenantOptions['audit']>;

export async function createFixture(options: MultitenantOptions = {}): Promise<Fixture> {
  const db = await createTestDatabase();
  const sql: string[] = [];
  const sequelize = new Sequelize(db.url, {
    logging: ((s: string, options?: { bind?: unknown[] }) => {
      sql.push(inlineBind(s.replace(/^Executing \([^)]*\): /, ''), options?.bind));
    }) as (sql: string) => void,
    pool: { max: db.maxConnections },
  });

  // Defined before multitenant() is called …
  const Store = sequelize.define(
    'Store',
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, name: DataTypes.STRING },
    { tableName: 'stores', timestamps: false, tenantKey: 'id' },
  );
  const Product = sequelize.define(
    'Product',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      store_id: { type: DataTypes.INTEGER, primaryKey: true, allowNull: false },
      name: { type: DataTypes.STRING, allowNull: false },
      price: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      stock: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      category_id: { type: DataTypes.INTEGER, allowNull: true },
    },
    { tableName: 'products', timestamps: false, tenantKey: 'store_id' },
  );

  // SEQUELIZE_MULTITENANT_AUDIT=throw runs the whole suite with the auditor on (CI does, once): `audit`
  // is left to the environment unless a test sets it.
  const pluginOptions: MultitenantOptions = { notice: false, ...options };
  multitenant(sequelize, pluginOptions);
  // On Citus every key includes the tenant column (Citus refuses others), global tables are reference
  // tables, and every statement sent under one tenant must be a router query.
  if (onCitus) routerOnly(sequelize);
  const ownKey = onCitus ? { primaryKey: true } : {};

  // … and after.
  const Purchase = sequelize.define(
    'Purchase',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      store_id: { type: DataTypes.INTEGER, allowNull: false, ...ownKey },
      product_id: { type: DataTypes.INTEGER, allowNull: true },
      qty: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
    },
    { tableName: 'purchases', timestamps: true, tenantKey: 'store_id' },
  );
  const Category = sequelize.define(
    'Category',
    { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true }, name: DataTypes.STRING },
    { tableName: 'categories', timestamps: false, referenceTable: true },
  );
  // A tenant column with a custom name, not part of the key.
  const Note = sequelize.define(
    'Note',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      acc_id: { type: DataTypes.INTEGER, ...(onCitus ? { primaryKey: true, allowNull: false } : {}) },
      body: DataTypes.TEXT,
    },
    { tableName: 'notes', timestamps: false, tenantKey: 'acc_id' },
  );
  // underscored: attribute storeId, column store_id, tenantKey given by attribute; paranoid.
  const Review = sequelize.define(
    'Review',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      storeId: { type: DataTypes.INTEGER, allowNull: false, ...ownKey },
      stars: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 5 },
    },
    { tableName: 'reviews', underscored: true, paranoid: true, tenantKey: 'storeId' },
  );
  // tenantKey given by column name; a BIGINT tenant column (read back as strings); field: mapping.
  const Coupon = sequelize.define(
    'Coupon',
    {
      code: { type: DataTypes.STRING, primaryKey: true },
      // BIGINT beside INTEGER stores on PostgreSQL; on Citus a tenant column has the tenant table's key type (colocation)
      shopId: { type: onCitus ? DataTypes.INTEGER : DataTypes.BIGINT, primaryKey: true, field: 'shop_ref' },
      uses: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    },
    { tableName: 'coupons', timestamps: false, tenantKey: 'shop_ref' },
  );
  // A UUID-keyed tenant.
  const Org = sequelize.define(
    'Org',
    { id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 }, name: DataTypes.STRING },
    { tableName: 'orgs', timestamps: false, tenantKey: 'id' },
  );
  const Doc = sequelize.define(
    'Doc',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      orgId: { type: DataTypes.UUID, allowNull: false, field: 'org_id', ...ownKey },
      title: DataTypes.STRING,
    },
    { tableName: 'docs', timestamps: false, tenantKey: 'orgId' },
  );

  // Tags: a tenant model with a composite key, linked to products through ProductTag.
  const Tag = sequelize.define(
    'Tag',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      store_id: { type: DataTypes.INTEGER, primaryKey: true, allowNull: false },
      label: DataTypes.STRING,
    },
    { tableName: 'tags', timestamps: false, tenantKey: 'store_id' },
  );
  const ProductTag = sequelize.define(
    'ProductTag',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      store_id: { type: DataTypes.INTEGER, allowNull: false, ...ownKey },
      product_id: { type: DataTypes.INTEGER, allowNull: false },
      tag_id: { type: DataTypes.INTEGER, allowNull: false },
    },
    { tableName: 'product_tags', timestamps: false, tenantKey: 'store_id' },
  );
  // An underscored parent whose tenant attribute (storeId) differs from its column (store_id).
  const Campaign = sequelize.define(
    'Campaign',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true },
      storeId: { type: DataTypes.INTEGER, primaryKey: true },
      name: DataTypes.STRING,
    },
    { tableName: 'campaigns', timestamps: false, underscored: true, tenantKey: 'storeId' },
  );
  const Ad = sequelize.define(
    'Ad',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true },
      storeId: { type: DataTypes.INTEGER, primaryKey: true },
      campaignId: { type: DataTypes.INTEGER, allowNull: false },
      text: DataTypes.STRING,
    },
    { tableName: 'ads', timestamps: false, underscored: true, tenantKey: 'storeId' },
  );

  // Associations. Product ids repeat across tenants, so its foreign keys carry no single-column constraint.
  const noFk = { constraints: false };
  Store.hasMany(Product, { foreignKey: 'store_id', ...noFk });
  Product.belongsTo(Store, { foreignKey: 'store_id', ...noFk });
  Product.hasMany(Purchase, { foreignKey: 'product_id', ...noFk });
  Purchase.belongsTo(Product, { foreignKey: 'product_id', ...noFk });
  Product.hasOne(Purchase, { as: 'firstPurchase', foreignKey: 'product_id', ...noFk });
  Product.belongsTo(Category, { foreignKey: 'category_id', ...noFk });
  Category.hasMany(Product, { foreignKey: 'category_id', ...noFk });
  Product.belongsToMany(Tag, { through: { model: ProductTag, unique: false }, foreignKey: 'product_id', otherKey: 'tag_id', ...noFk });
  Tag.belongsToMany(Product, { through: { model: ProductTag, unique: false }, foreignKey: 'tag_id', otherKey: 'product_id', ...noFk });
  Store.hasMany(Review, { foreignKey: 'storeId', ...noFk });
  Campaign.hasMany(Ad, { foreignKey: 'campaignId', ...noFk });
  Ad.belongsTo(Campaign, { foreignKey: 'campaignId', ...noFk });

  await sequelize.sync(); // a fresh database (or schema): nothing to drop

  // Setup and inspection are admin work: unscoped on purpose (and so never held to strict mode or the auditor).
  const raw = async (q: string) => {
    await withoutTenant(() => sequelize.query(q));
  };
  const fixture: Fixture = {
    db,
    sequelize,
    options: pluginOptions,
    sql,
    Store,
    Product,
    Purchase,
    Category,
    Note,
    Review,
    Coupon,
    Org,
    Doc,
    Tag,
    ProductTag,
    Campaign,
    Ad,
    async reset() {
      await raw(
        'TRUNCATE stores, products, purchases, categories, notes, reviews, coupons, orgs, docs, tags, product_tags, campaigns, ads RESTART IDENTITY',
      );
      await raw(`INSERT INTO stores (id, name) VALUES (1, 'A'), (2, 'B'), (3, 'C')`);
      await raw(`SELECT setval('stores_id_seq', 3)`);
      await raw(`INSERT INTO products (id, store_id, name, price, stock) VALUES
        (1, 1, 'apple-A', 10, 5), (2, 1, 'pear-A', 20, 5),
        (1, 2, 'apple-B', 11, 7), (2, 2, 'pear-B', 21, 7), (3, 2, 'plum-B', 31, 7)`);
      await raw(`SELECT setval('products_id_seq', 10)`);
      await raw(`INSERT INTO purchases (id, store_id, product_id, qty, "createdAt", "updatedAt") VALUES
        (1, 1, 1, 1, now(), now()), (2, 2, 1, 2, now(), now()), (3, 2, 2, 3, now(), now())`);
      await raw(`SELECT setval('purchases_id_seq', 10)`);
      await raw(`INSERT INTO categories (id, name) VALUES (1, 'fruit'), (2, 'veg')`);
      await raw(`INSERT INTO notes (id, acc_id, body) VALUES (1, 1, 'note-A'), (2, 2, 'note-B')`);
      await raw(`SELECT setval('notes_id_seq', 10)`);
      await raw(`INSERT INTO reviews (id, store_id, stars, created_at, updated_at) VALUES
        (1, 1, 4, now(), now()), (2, 2, 2, now(), now())`);
      await raw(`SELECT setval('reviews_id_seq', 10)`);
      await raw(`INSERT INTO coupons (code, shop_ref, uses) VALUES ('SAVE', 1, 0), ('SAVE', 2, 0), ('ONLYB', 2, 3)`);
      await raw(`INSERT INTO orgs (id, name) VALUES ('${ORG_A}', 'org-A'), ('${ORG_B}', 'org-B')`);
      await raw(`INSERT INTO docs (id, org_id, title) VALUES (1, '${ORG_A}', 'doc-A'), (2, '${ORG_B}', 'doc-B')`);
      await raw(`SELECT setval('docs_id_seq', 10)`);
      await raw(`UPDATE products SET category_id = 1 WHERE id = 1`);
      await raw(`INSERT INTO tags (id, store_id, label) VALUES (1, 1, 'red-A'), (2, 1, 'sweet-A'), (1, 2, 'red-B'), (2, 2, 'sweet-B')`);
      await raw(`SELECT setval('tags_id_seq', 10)`);
      // product 1 ↔ tag 1 in both tenants; product 1 ↔ tag 2 only in tenant 2.
      await raw(`INSERT INTO product_tags (id, store_id, product_id, tag_id) VALUES (1, 1, 1, 1), (2, 2, 1, 1), (3, 2, 1, 2)`);
      await raw(`SELECT setval('product_tags_id_seq', 10)`);
      await raw(`INSERT INTO campaigns (id, store_id, name) VALUES (1, 1, 'spring-A'), (2, 1, 'idle-A'), (1, 2, 'spring-B')`);
      await raw(`INSERT INTO ads (id, store_id, campaign_id, text) VALUES (1, 1, 1, 'ad-A'), (1, 2, 1, 'ad-B'), (2, 2, 1, 'ad-B2')`);
      sql.length = 0;
    },
    async rows(table, order = '1, 2') {
      const [rows] = await withoutTenant(() => sequelize.query(`SELECT * FROM ${table} ORDER BY ${order}`));
      return rows as Record<string, unknown>[];
    },
    async capture(fn) {
      const start = sql.length;
      const result = await fn();
      return { result, sql: sql.slice(start) };
    },
    async close() {
      await sequelize.close();
      await db.drop();
    },
  };
  await fixture.reset();
  return fixture;
}

/**
 * The ava test function of a file that runs on one fixture: created before the file's tests, closed
 * after them, reset (both tenants seeded again) before each.
 */
export function fixtureTests(anyTest: TestFn<Fixture>, options?: MultitenantOptions): TestFn<Fixture> {
  anyTest.before(async (t) => {
    t.context = await createFixture(options);
  });
  anyTest.after.always(async (t) => t.context?.close());
  anyTest.beforeEach(async (t) => t.context.reset());
  return anyTest;
}

/** The statements of a capture that touch `table` (by its quoted name). */
export function touching(statements: string[], table: string): string[] {
  return statements.filter((s) => s.includes(`"${table}"`));
}
