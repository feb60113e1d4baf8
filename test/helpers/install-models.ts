// The install tests' schema — stores (the tenant table), products, purchases → products, tags,
// product_tags (belongsToMany through a model), table names prefixed per test — defined each way an
// application defines models: sequelize.define, Model.init, and sequelize-typescript classes
// (decorators). A module of its own so that a test can load sequelize-typescript after multitenant().
import 'reflect-metadata';
import { DataTypes, type Model, type ModelStatic, type Sequelize, Model as SequelizeModel } from 'sequelize';
import {
  BelongsTo,
  BelongsToMany,
  Column,
  DataType,
  ForeignKey,
  HasMany,
  type ModelCtor,
  PrimaryKey,
  Table,
  Model as TsModel,
} from 'sequelize-typescript';

// biome-ignore lint/suspicious/noExplicitAny: models of any shape
export type AnyModel = ModelStatic<Model<any, any>>;
export interface Models {
  Store: AnyModel;
  Product: AnyModel;
  Purchase: AnyModel;
  Tag: AnyModel;
  ProductTag: AnyModel;
}

/** The same schema as sequelize-typescript classes (decorators), table names prefixed per cell. */
export function tsModels(p: string): Models & { all: ModelCtor[] } {
  @Table({ tableName: `${p}_stores`, tenantKey: 'id', timestamps: false })
  class Store extends TsModel {
    @PrimaryKey @Column(DataType.BIGINT) declare id: string;
    @Column(DataType.STRING) declare name: string;
    @HasMany(() => Product, 'store_id') declare products: Product[];
  }
  @Table({ tableName: `${p}_products`, tenantKey: 'store_id', timestamps: false })
  class Product extends TsModel {
    @PrimaryKey @Column(DataType.BIGINT) declare id: string;
    @PrimaryKey @ForeignKey(() => Store) @Column({ type: DataType.BIGINT, allowNull: false }) declare store_id: string;
    @Column(DataType.STRING) declare name: string;
    @BelongsTo(() => Store, 'store_id') declare store: Store;
    @HasMany(() => Purchase, 'product_id') declare purchases: Purchase[];
    @BelongsToMany(
      () => Tag,
      () => ProductTag,
      'product_id',
      'tag_id',
    )
    declare tags: Tag[];
  }
  @Table({ tableName: `${p}_purchases`, tenantKey: 'store_id', timestamps: false })
  class Purchase extends TsModel {
    @PrimaryKey @Column(DataType.BIGINT) declare id: string;
    @PrimaryKey @Column({ type: DataType.BIGINT, allowNull: false }) declare store_id: string;
    @ForeignKey(() => Product) @Column({ type: DataType.BIGINT, allowNull: false }) declare product_id: string;
    @BelongsTo(() => Product, 'product_id') declare product: Product;
  }
  @Table({ tableName: `${p}_tags`, tenantKey: 'store_id', timestamps: false })
  class Tag extends TsModel {
    @PrimaryKey @Column(DataType.BIGINT) declare id: string;
    @PrimaryKey @Column({ type: DataType.BIGINT, allowNull: false }) declare store_id: string;
    @Column(DataType.STRING) declare label: string;
  }
  @Table({ tableName: `${p}_product_tags`, tenantKey: 'store_id', timestamps: false })
  class ProductTag extends TsModel {
    @PrimaryKey @Column({ type: DataType.BIGINT, allowNull: false }) declare store_id: string;
    @PrimaryKey @ForeignKey(() => Product) @Column(DataType.BIGINT) declare product_id: string;
    @PrimaryKey @ForeignKey(() => Tag) @Column(DataType.BIGINT) declare tag_id: string;
  }
  const cast = (m: unknown) => m as AnyModel;
  return {
    Store: cast(Store),
    Product: cast(Product),
    Purchase: cast(Purchase),
    Tag: cast(Tag),
    ProductTag: cast(ProductTag),
    all: [Store, Product, Purchase, Tag, ProductTag] as unknown as ModelCtor[],
  };
}

/** A fresh definition each time: Sequelize writes into the attribute objects it is given. */
const bigintKey = () => ({ type: DataTypes.BIGINT, primaryKey: true });

/** The schema through sequelize.define or Model.init (the same attributes, keys and associations). */
export function plainModels(s: Sequelize, p: string, style: 'define' | 'init'): Models {
  const tenant = () => ({ type: DataTypes.BIGINT, primaryKey: true, allowNull: false });
  const make = (name: string, attributes: Record<string, unknown>, options: Record<string, unknown>): AnyModel => {
    const all = { timestamps: false, ...options, tableName: `${p}_${options.tableName}` };
    if (style === 'define') return s.define(name, attributes as never, all) as AnyModel;
    const M = class extends SequelizeModel {};
    M.init(attributes as never, { ...all, sequelize: s, modelName: name });
    return M as unknown as AnyModel;
  };
  const Store = make('Store', { id: bigintKey(), name: DataTypes.STRING }, { tableName: 'stores', tenantKey: 'id' });
  const Product = make(
    'Product',
    { id: bigintKey(), store_id: tenant(), name: DataTypes.STRING },
    { tableName: 'products', tenantKey: 'store_id' },
  );
  const Purchase = make(
    'Purchase',
    { id: bigintKey(), store_id: tenant(), product_id: { type: DataTypes.BIGINT, allowNull: false } },
    { tableName: 'purchases', tenantKey: 'store_id' },
  );
  const Tag = make('Tag', { id: bigintKey(), store_id: tenant(), label: DataTypes.STRING }, { tableName: 'tags', tenantKey: 'store_id' });
  const ProductTag = make(
    'ProductTag',
    { store_id: tenant(), product_id: bigintKey(), tag_id: bigintKey() },
    { tableName: 'product_tags', tenantKey: 'store_id' },
  );
  Product.belongsTo(Store, { foreignKey: 'store_id' });
  Store.hasMany(Product, { foreignKey: 'store_id' });
  Purchase.belongsTo(Product, { foreignKey: 'product_id' });
  Product.hasMany(Purchase, { foreignKey: 'product_id' });
  Product.belongsToMany(Tag, { through: ProductTag, foreignKey: 'product_id', otherKey: 'tag_id' });
  return { Store, Product, Purchase, Tag, ProductTag };
}
