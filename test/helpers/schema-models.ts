// A schema written the Citus way — bigint keys that include the tenant column, foreign keys on — used by
// the schema tests on PostgreSQL and by the Citus tests.
import { DataTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize';

// biome-ignore lint/suspicious/noExplicitAny: models of any shape
type AnyModel = ModelStatic<Model<any, any>>;

export interface SchemaModels {
  Store: AnyModel;
  Country: AnyModel;
  Product: AnyModel;
  Purchase: AnyModel;
  Tag: AnyModel;
  ProductTag: AnyModel;
  Label: AnyModel;
  ProductLabel: AnyModel;
  /** Not on Citus: a primary key without the tenant column cannot be distributed. */
  Invoice?: AnyModel;
  InvoiceLine?: AnyModel;
}

export function defineSchemaModels(sequelize: Sequelize, schema?: string, options: { citus?: boolean } = {}): SchemaModels {
  const base = { timestamps: false, ...(schema ? { schema } : {}) };
  const id = { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true };
  const tenant = { type: DataTypes.BIGINT, primaryKey: true, allowNull: false };
  const Store = sequelize.define('Store', { id, name: DataTypes.STRING }, { ...base, tableName: 'stores', tenantKey: 'id' });
  const Country = sequelize.define(
    'Country',
    { code: { type: DataTypes.STRING(2), primaryKey: true }, name: DataTypes.STRING },
    { ...base, tableName: 'countries', referenceTable: true },
  );
  const Product = sequelize.define(
    'Product',
    {
      id,
      store_id: tenant,
      name: DataTypes.STRING,
      country_code: DataTypes.STRING(2),
      stock: { type: DataTypes.INTEGER, defaultValue: 0 },
    },
    { ...base, tableName: 'products', tenantKey: 'store_id' },
  );
  const Purchase = sequelize.define(
    'Purchase',
    { id, store_id: tenant, product_id: { type: DataTypes.BIGINT, allowNull: false }, qty: DataTypes.INTEGER },
    { ...base, tableName: 'purchases', tenantKey: 'store_id' },
  );
  const Tag = sequelize.define(
    'Tag',
    { id, store_id: tenant, label: DataTypes.STRING },
    { ...base, tableName: 'tags', tenantKey: 'store_id' },
  );
  const ProductTag = sequelize.define(
    'ProductTag',
    { store_id: { type: DataTypes.BIGINT, allowNull: false }, product_id: DataTypes.BIGINT, tag_id: DataTypes.BIGINT },
    { ...base, tableName: 'product_tags', tenantKey: 'store_id' },
  );
  // A through model with a key of its own: Sequelize adds UNIQUE (product_id, label_id), the library the tenant.
  const Label = sequelize.define(
    'Label',
    { id, store_id: tenant, text: DataTypes.STRING },
    { ...base, tableName: 'labels', tenantKey: 'store_id' },
  );
  const ProductLabel = sequelize.define(
    'ProductLabel',
    { id, store_id: tenant, product_id: DataTypes.BIGINT, label_id: DataTypes.BIGINT },
    { ...base, tableName: 'product_labels', tenantKey: 'store_id' },
  );
  Product.belongsToMany(Label, { through: ProductLabel, foreignKey: 'product_id', otherKey: 'label_id' });
  const models: SchemaModels = { Store, Country, Product, Purchase, Tag, ProductTag, Label, ProductLabel };
  if (options.citus) return withAssociations(models);
  // A parent whose primary key does not include the tenant column: the library adds UNIQUE (store_id, id).
  const Invoice = sequelize.define(
    'Invoice',
    { id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true }, store_id: { type: DataTypes.BIGINT, allowNull: false } },
    { ...base, tableName: 'invoices', tenantKey: 'store_id' },
  );
  const InvoiceLine = sequelize.define(
    'InvoiceLine',
    { id, store_id: tenant, invoice_id: { type: DataTypes.BIGINT, allowNull: true }, amount: DataTypes.INTEGER },
    { ...base, tableName: 'invoice_lines', tenantKey: 'store_id' },
  );

  Invoice.hasMany(InvoiceLine, { foreignKey: 'invoice_id' }); // nullable: Sequelize's default SET NULL → NO ACTION
  return withAssociations({ ...models, Invoice, InvoiceLine });
}

function withAssociations(models: SchemaModels): SchemaModels {
  const { Store, Country, Product, Purchase, Tag, ProductTag } = models;
  Store.hasMany(Product, { foreignKey: 'store_id' });
  Product.belongsTo(Store, { foreignKey: 'store_id' });
  Product.belongsTo(Country, { foreignKey: 'country_code' });
  Product.hasMany(Purchase, { foreignKey: 'product_id', onDelete: 'CASCADE' });
  Purchase.belongsTo(Product, { foreignKey: 'product_id', onDelete: 'CASCADE' });
  Product.belongsToMany(Tag, { through: ProductTag, foreignKey: 'product_id', otherKey: 'tag_id' });
  Tag.belongsToMany(Product, { through: ProductTag, foreignKey: 'tag_id', otherKey: 'product_id' });
  return models;
}
