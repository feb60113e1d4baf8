// Module augmentation: the model options sequelize-multitenant reads, typed on Sequelize's own options,
// so that `Model.init(attrs, { sequelize, tenantKey: 'store_id' })` compiles with no cast.
import type { Model } from 'sequelize';

declare module 'sequelize' {
  interface ModelOptions<M extends Model = Model> {
    /**
     * The attribute (`storeId`) or column (`store_id`) that holds the tenant: makes this a tenant model,
     * scoped to the current tenant. On the tenant table itself, its primary key (`'id'`).
     * @example Product.init(attrs, { sequelize, tenantKey: 'store_id' })
     */
    tenantKey?: string;
    /**
     * Marks a global (non-tenant) model as a Citus reference table, copied to every node.
     * @example Country.init(attrs, { sequelize, referenceTable: true })
     */
    referenceTable?: boolean;
  }
}
