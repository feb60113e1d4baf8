// The benchmark's models and workloads, each written twice: with hand-written tenant filters on plain
// Sequelize (the baseline) and left to the library. Shared by run.ts (PostgreSQL) and node-cpu.ts.
import { DataTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize';
import { lib } from './library';

const { withTenant } = lib;

export const TENANTS = 3;
export const PRODUCTS = 50;

// biome-ignore lint/suspicious/noExplicitAny: benchmark models
type M = ModelStatic<Model<any, any>>;
export function define(sequelize: Sequelize, tenantKeys: boolean): { Product: M; Purchase: M } {
  const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
  const opts = (table: string) => ({ tableName: table, timestamps: false, ...(tenantKeys ? { tenantKey: 'store_id' } : {}) });
  const Product = sequelize.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.STRING, stock: DataTypes.INTEGER },
    opts('bench_products'),
  );
  const Purchase = sequelize.define(
    'Purchase',
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      store_id: key(),
      product_id: DataTypes.BIGINT,
      qty: DataTypes.INTEGER,
    },
    opts('bench_purchases'),
  );
  Product.hasMany(Purchase, { foreignKey: 'product_id', constraints: false });
  Purchase.belongsTo(Product, { foreignKey: 'product_id', constraints: false });
  return { Product, Purchase };
}

export type Workload = (i: number) => Promise<unknown>;
export type Workloads = Record<string, Record<'baseline' | 'control' | 'library' | 'rls', Workload>>;

type Models = { Product: M; Purchase: M };
/**
 * Each workload written by hand (baseline) and left to the library — on `lib`, and the same on `rls` —
 * and the A/A control: the baseline's work again, on `control` (a plain instance of its own).
 */
export function workloadsFor(base: Models, lib: Models, rls: Models = lib, control: Models = base): Workloads {
  const ways = byLibrary(base, lib);
  const onRls = byLibrary(base, rls);
  const again = byLibrary(control, lib);
  return Object.fromEntries(
    Object.entries(ways).map(([name, w]) => [
      name,
      { ...w, control: (again[name] as typeof w).baseline, rls: (onRls[name] as typeof w).library },
    ]),
  );
}

function byLibrary(base: Models, lib: Models): Record<string, Record<'baseline' | 'library', Workload>> {
  const tenantOf = (i: number) => (i % TENANTS) + 1;
  const pid = (i: number) => (i % PRODUCTS) + 1;
  // The same work written by hand (baseline) and left to the library.
  return {
    findByPk: {
      baseline: (i) => base.Product.findOne({ where: { id: pid(i), store_id: tenantOf(i) } }),
      library: (i) => withTenant(tenantOf(i), () => lib.Product.findOne({ where: { id: pid(i) } })),
    },
    'findAll + include': {
      baseline: (i) =>
        base.Product.findAll({
          where: { store_id: tenantOf(i), id: [pid(i), pid(i + 1), pid(i + 2)] },
          include: [{ model: base.Purchase, required: false, where: { store_id: tenantOf(i) } }],
        }),
      library: (i) =>
        withTenant(tenantOf(i), () => lib.Product.findAll({ where: { id: [pid(i), pid(i + 1), pid(i + 2)] }, include: [lib.Purchase] })),
    },
    'update by key': {
      baseline: (i) => base.Product.update({ stock: i % 100 }, { where: { id: pid(i), store_id: tenantOf(i) } }),
      library: (i) => withTenant(tenantOf(i), () => lib.Product.update({ stock: i % 100 }, { where: { id: pid(i) } })),
    },
    create: {
      baseline: (i) => base.Purchase.create({ store_id: tenantOf(i), product_id: pid(i), qty: 1 }),
      library: (i) => withTenant(tenantOf(i), () => lib.Purchase.create({ product_id: pid(i), qty: 1 })),
    },
    'mixed request': {
      baseline: async (i) => {
        const t = tenantOf(i);
        const p = await base.Product.findOne({ where: { id: pid(i), store_id: t } });
        await base.Purchase.findAll({ where: { product_id: pid(i), store_id: t } });
        await base.Purchase.create({ store_id: t, product_id: pid(i), qty: 2 });
        await base.Product.update({ stock: ((p?.get('stock') as number) ?? 0) - 1 }, { where: { id: pid(i), store_id: t } });
      },
      library: (i) =>
        withTenant(tenantOf(i), async () => {
          const p = await lib.Product.findOne({ where: { id: pid(i) } });
          await lib.Purchase.findAll({ where: { product_id: pid(i) } });
          await lib.Purchase.create({ product_id: pid(i), qty: 2 });
          await lib.Product.update({ stock: ((p?.get('stock') as number) ?? 0) - 1 }, { where: { id: pid(i) } });
        }),
    },
  };
}
