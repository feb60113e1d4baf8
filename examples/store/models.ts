// The store schema: Store is the tenant; Product and Purchase belong to a store (their keys include
// store_id, as Citus requires); Country is global (a Citus reference table).
import {
  type CreationOptional,
  DataTypes,
  type ForeignKey,
  type InferAttributes,
  type InferCreationAttributes,
  Model,
  type Sequelize,
} from 'sequelize';
import { multitenant } from 'sequelize-multitenant';

export const SCHEMA = 'store_example';

// BIGINT columns come back from pg as strings (JavaScript numbers stop at 2^53): declared `string`.
// The tenant column is CreationOptional: the library fills it in, so `Product.create({ name, price })` compiles.
export class Store extends Model<InferAttributes<Store>, InferCreationAttributes<Store>> {
  declare id: CreationOptional<string>;
  declare slug: string;
  declare name: string;
}
export class Country extends Model<InferAttributes<Country>, InferCreationAttributes<Country>> {
  declare code: string;
  declare name: string;
}
export class Product extends Model<InferAttributes<Product>, InferCreationAttributes<Product>> {
  declare id: CreationOptional<string>;
  declare storeId: CreationOptional<string>;
  declare name: string;
  declare price: number;
  declare countryCode: ForeignKey<Country['code']> | null;
}
export class Purchase extends Model<InferAttributes<Purchase>, InferCreationAttributes<Purchase>> {
  declare id: CreationOptional<string>;
  declare storeId: CreationOptional<string>;
  declare productId: string;
  declare quantity: CreationOptional<number>;
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
  // Real foreign keys: on sync() the library makes the ones between tenant tables composite —
  // purchases (store_id, product_id) → products (store_id, id) — since product ids repeat across stores.
  Store.hasMany(Product, { foreignKey: 'storeId' });
  Store.hasMany(Purchase, { foreignKey: 'storeId' });
  Product.hasMany(Purchase, { foreignKey: 'productId' });
  Purchase.belongsTo(Product, { foreignKey: 'productId' });
  Product.belongsTo(Country, { foreignKey: 'countryCode' });
  return { Store, Country, Product, Purchase };
}
