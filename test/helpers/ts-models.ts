// The install tests' schema as sequelize-typescript classes (decorators): stores (the tenant table),
// products, purchases → products, tags, product_tags (belongsToMany through a model), table names
// prefixed per test. A module of its own so that a test can load sequelize-typescript after multitenant().
import 'reflect-metadata';
import type { Model, ModelStatic } from 'sequelize';
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
