// The store schema: Store is the tenant; Product and Purchase belong to a store (their keys include
// store_id, as Citus requires); Country is global (a Citus reference table).
import { DataTypes, Model, type Sequelize } from 'sequelize';
import { multitenant } from 'sequelize-multitenant';

export const SCHEMA = 'store_example';

export class Store extends Model {
  declare id: number;
  declare slug: string;
  declare name: string;
}
export class Country extends Model {
  declare code: string;
  declare name: string;
}
export class Product extends Model {
  declare id: number;
  declare storeId: number;
  declare name: string;
  declare price: number;
  declare countryCode: string | null;
}
export class Purchase extends Model {
  declare id: number;
  declare storeId: number;
  declare productId: number;
  declare quantity: number;
}

export function defineModels(sequelize: Sequelize) {
  multitenant(sequelize, { strict: true });
  const common = { sequelize, schema: SCHEMA, underscored: true, timestamps: false };
  Store.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      // Not `unique: true`: on Citus a unique key must include the distribution column (id).
      slug: { type: DataTypes.STRING, allowNull: false },
      name: { type: DataTypes.STRING, allowNull: false },
    },
    { ...common, tableName: 'stores', tenantKey: 'id' },
  );
  Country.init(
    { code: { type: DataTypes.STRING(2), primaryKey: true }, name: { type: DataTypes.STRING, allowNull: false } },
    { ...common, tableName: 'countries', referenceTable: true },
  );
  Product.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      storeId: { type: DataTypes.BIGINT, primaryKey: true, allowNull: false },
      name: { type: DataTypes.STRING, allowNull: false },
      price: { type: DataTypes.INTEGER, allowNull: false },
      countryCode: { type: DataTypes.STRING(2) },
    },
    { ...common, tableName: 'products', tenantKey: 'storeId' },
  );
  Purchase.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      storeId: { type: DataTypes.BIGINT, primaryKey: true, allowNull: false },
      productId: { type: DataTypes.BIGINT, allowNull: false },
      quantity: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
    },
    { ...common, tableName: 'purchases', tenantKey: 'storeId' },
  );
  // Product ids repeat across stores: no single-column foreign keys on them.
  Product.hasMany(Purchase, { foreignKey: 'productId', constraints: false });
  Purchase.belongsTo(Product, { foreignKey: 'productId', constraints: false });
  Product.belongsTo(Country, { foreignKey: 'countryCode', constraints: false });
  return { Store, Country, Product, Purchase };
}
