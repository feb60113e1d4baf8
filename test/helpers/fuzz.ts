// A model-based isolation fuzzer: random sequences of operations across three tenants whose rows share
// primary keys, each checked against an in-memory model of every tenant's rows. After every operation
// the database must hold exactly what the model says — for all tenants, so that an operation under
// tenant T that touched another tenant's rows is caught — and what the operation returned must be T's.
import fc from 'fast-check';
import { type FindOptions, type Model, Op, UniqueConstraintError } from 'sequelize';
import { TenantMismatchError, withoutTenant, withTenant } from '../../src/index';
import type { Fixture } from './fixture';
import { type Cond, condition, holds, nameTable, sqlText, TABLE_NAMINGS, TOP_FORMS, type TopForm, topWhere } from './fuzz-shapes';

const TENANTS = [1, 2, 3] as const;
type T = (typeof TENANTS)[number];
interface P {
  id: number;
  store: number;
  name: string;
  price: number;
  stock: number;
}
interface U {
  id: number;
  store: number;
  product_id: number | null;
  qty: number;
}
interface L {
  store: number;
  product_id: number;
  tag_id: number;
}
interface World {
  products: P[];
  purchases: U[];
  links: L[];
  tags: Array<{ id: number; store: number; label: string }>;
}

const t = fc.constantFrom<T>(...TENANTS);
const id = fc.integer({ min: 1, max: 6 });
const price = fc.integer({ min: 0, max: 50 });
const other = (tenant: T) => TENANTS.filter((x) => x !== tenant);

export type Operation =
  | { k: 'findAll'; t: T; min: number; desc: boolean; limit: number | null }
  | { k: 'findOne'; t: T; id: number }
  | { k: 'aggregate'; t: T; fn: 'count' | 'sum' | 'max' }
  | { k: 'include'; t: T; required: boolean; limit: number | null }
  | { k: 'tags'; t: T }
  | { k: 'create'; t: T; id: number | null; price: number }
  | { k: 'createOther'; t: T; pick: number }
  | { k: 'bulkCreate'; t: T; prices: number[] }
  | { k: 'update'; t: T; id: number; price: number }
  | { k: 'updateMove'; t: T; id: number; pick: number }
  | { k: 'save'; t: T; id: number; price: number }
  | { k: 'saveCross'; t: T; id: number; pick: number }
  | { k: 'increment'; t: T; id: number; by: number }
  | { k: 'destroy'; t: T; id: number }
  | { k: 'upsert'; t: T; id: number; price: number }
  | { k: 'createPurchase'; t: T; id: number; qty: number }
  | { k: 'getPurchases'; t: T; id: number }
  | { k: 'unlinkPurchases'; t: T; id: number }
  | { k: 'addTag'; t: T; id: number; tag: number }
  | { k: 'crossWhere'; t: T; pick: number }
  | { k: 'several'; ts: T[] }
  | { k: 'condFind'; t: T; cond: Cond; form: TopForm; pick: number; viaScope: boolean; hooks: boolean }
  | { k: 'condCount'; t: T; cond: Cond; form: TopForm; pick: number; hooks: boolean }
  | { k: 'condUpdate'; t: T; cond: Cond; form: TopForm; pick: number; price: number; hooks: boolean }
  | { k: 'condDestroy'; t: T; cond: Cond; form: TopForm; pick: number; hooks: boolean }
  | { k: 'condInclude'; t: T; cond: Cond; form: TopForm; pick: number; at: 'where' | 'on'; join: Join; limit: number | null }
  | { k: 'condThrough'; t: T; cond: Cond; form: TopForm; pick: number; required: boolean }
  | { k: 'qiSelect'; t: T; cond: Cond; form: TopForm; pick: number; naming: Naming }
  | { k: 'qiUpdate'; t: T; cond: Cond; form: TopForm; pick: number; naming: Naming; price: number }
  | { k: 'qiDelete'; t: T; cond: Cond; form: TopForm; pick: number; naming: Naming }
  | { k: 'qiIncrement'; t: T; cond: Cond; form: TopForm; pick: number; naming: Naming };
type Join = 'left' | 'required' | 'right' | 'separate' | 'or';
type Naming = (typeof TABLE_NAMINGS)[number];

// Conditions on the tenant column itself too: `store_id = k` under AND, OR, NOT, in literals — the
// library takes a where that already pins the current tenant in AND position as scoped (its own hooks
// give that form), so every other position must still get the predicate.
const productCond = fc.oneof(condition('id', 'price', 6, 60), condition('store_id', 'price', 3, 60));
const purchaseCond = condition('product_id', 'qty', 4, 9);
const linkCond = condition('tag_id', 'id', 2, 40);
const shape = { form: fc.constantFrom<TopForm>(...TOP_FORMS), pick: fc.nat(80) };
// hooks: false skips the library's hooks (which put the tenant at the root of the where): the
// query-interface layer then meets the application's where as it was written.
const hooks = fc.boolean();
const naming = fc.constantFrom<Naming>(...TABLE_NAMINGS);

export const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ k: fc.constant('findAll' as const), t, min: price, desc: fc.boolean(), limit: fc.option(fc.integer({ min: 1, max: 4 })) }),
  fc.record({ k: fc.constant('findOne' as const), t, id }),
  fc.record({ k: fc.constant('aggregate' as const), t, fn: fc.constantFrom('count' as const, 'sum' as const, 'max' as const) }),
  fc.record({ k: fc.constant('include' as const), t, required: fc.boolean(), limit: fc.option(fc.integer({ min: 1, max: 3 })) }),
  fc.record({ k: fc.constant('tags' as const), t }),
  fc.record({ k: fc.constant('create' as const), t, id: fc.option(id), price }),
  fc.record({ k: fc.constant('createOther' as const), t, pick: fc.nat(1) }),
  fc.record({ k: fc.constant('bulkCreate' as const), t, prices: fc.array(price, { minLength: 1, maxLength: 3 }) }),
  fc.record({ k: fc.constant('update' as const), t, id, price }),
  fc.record({ k: fc.constant('updateMove' as const), t, id, pick: fc.nat(1) }),
  fc.record({ k: fc.constant('save' as const), t, id, price }),
  fc.record({ k: fc.constant('saveCross' as const), t, id, pick: fc.nat(1) }),
  fc.record({ k: fc.constant('increment' as const), t, id, by: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ k: fc.constant('destroy' as const), t, id }),
  fc.record({ k: fc.constant('upsert' as const), t, id, price }),
  fc.record({ k: fc.constant('createPurchase' as const), t, id, qty: fc.integer({ min: 1, max: 9 }) }),
  fc.record({ k: fc.constant('getPurchases' as const), t, id }),
  fc.record({ k: fc.constant('unlinkPurchases' as const), t, id }),
  fc.record({ k: fc.constant('addTag' as const), t, id, tag: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ k: fc.constant('crossWhere' as const), t, pick: fc.nat(1) }),
  fc.record({ k: fc.constant('several' as const), ts: fc.uniqueArray(t, { minLength: 2, maxLength: 3 }) }),
  fc.record({ k: fc.constant('condFind' as const), t, cond: productCond, ...shape, viaScope: fc.boolean(), hooks }),
  fc.record({ k: fc.constant('condCount' as const), t, cond: productCond, ...shape, hooks }),
  fc.record({ k: fc.constant('condUpdate' as const), t, cond: productCond, ...shape, price, hooks }),
  fc.record({ k: fc.constant('condDestroy' as const), t, cond: productCond, ...shape, hooks }),
  fc.record({
    k: fc.constant('condInclude' as const),
    t,
    cond: purchaseCond,
    ...shape,
    at: fc.constantFrom('where' as const, 'on' as const),
    join: fc.constantFrom<Join>('left', 'required', 'right', 'separate', 'or'),
    limit: fc.option(fc.integer({ min: 1, max: 3 })),
  }),
  fc.record({ k: fc.constant('condThrough' as const), t, cond: linkCond, ...shape, required: fc.boolean() }),
  fc.record({ k: fc.constant('qiSelect' as const), t, cond: productCond, ...shape, naming }),
  fc.record({ k: fc.constant('qiUpdate' as const), t, cond: productCond, ...shape, naming, price }),
  fc.record({ k: fc.constant('qiDelete' as const), t, cond: productCond, ...shape, naming }),
  fc.record({ k: fc.constant('qiIncrement' as const), t, cond: productCond, ...shape, naming }),
);

/** The current schema (public, or the test schema on Citus), for `{ tableName, schema }` namings. */
let schema = 'public';

// biome-ignore lint/suspicious/noExplicitAny: rows with includes
type Row = Model & Record<string, any>;
const byId = <X extends { id: number }>(a: X, b: X) => a.id - b.id;
const pair = (a: unknown[], b: unknown[]) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number);

async function seed(f: Fixture): Promise<void> {
  await f.reset();
  await withoutTenant(async () => {
    const q = (s: string) => f.sequelize.query(s);
    await q('DELETE FROM products; DELETE FROM purchases; DELETE FROM product_tags; DELETE FROM tags');
    // Every tenant holds products 1..3 and tags 1..2: the same keys, other rows.
    await q(
      `INSERT INTO products (id, store_id, name, price, stock) SELECT i, s, 'p' || i || '-' || s, i * 10 + s, 5 FROM generate_series(1, 3) i, generate_series(1, 3) s`,
    );
    await q(
      `INSERT INTO tags (id, store_id, label) SELECT i, s, 't' || i || '-' || s FROM generate_series(1, 2) i, generate_series(1, 3) s`,
    );
    await q(
      `INSERT INTO purchases (id, store_id, product_id, qty, "createdAt", "updatedAt") SELECT s * 10 + i, s, i, 1, now(), now() FROM generate_series(1, 2) i, generate_series(1, 3) s`,
    );
    await q(`INSERT INTO product_tags (id, store_id, product_id, tag_id) SELECT s * 10 + 1, s, 1, 1 FROM generate_series(1, 3) s`);
    await q(`SELECT setval('products_id_seq', 100); SELECT setval('purchases_id_seq', 100); SELECT setval('product_tags_id_seq', 100)`);
  });
}

async function load(f: Fixture): Promise<World> {
  return withoutTenant(async () => {
    const q = async <X>(s: string) => (await f.sequelize.query(s))[0] as X[];
    return {
      products: await q<P>('SELECT id, store_id AS store, name, price, stock FROM products ORDER BY store_id, id'),
      purchases: await q<U>('SELECT id, store_id AS store, product_id, qty FROM purchases ORDER BY store_id, id'),
      links: await q<L>('SELECT store_id AS store, product_id, tag_id FROM product_tags ORDER BY store_id, product_id, tag_id'),
      tags: await q<{ id: number; store: number; label: string }>('SELECT id, store_id AS store, label FROM tags ORDER BY store_id, id'),
    };
  });
}

const sorted = (w: World): World => ({
  products: [...w.products].sort((a, b) => a.store - b.store || a.id - b.id),
  purchases: [...w.purchases].sort((a, b) => a.store - b.store || a.id - b.id),
  links: [...w.links].sort((a, b) => a.store - b.store || a.product_id - b.product_id || a.tag_id - b.tag_id),
  tags: [...w.tags].sort((a, b) => a.store - b.store || a.id - b.id),
});

class Violation extends Error {}
function same(what: string, actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Violation(`${what}\n  got      ${a}\n  expected ${e}`);
}
async function refused(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (err instanceof TenantMismatchError) return;
    throw err;
  }
  throw new Violation(`${what}: expected TenantMismatchError, it ran`);
}

/** Runs one operation against the database and the model; returns the next model. */
async function step(f: Fixture, w: World, op: Operation): Promise<World> {
  const { Product, Purchase, Tag } = f;
  const mine = (x: { store: number }) => 'ts' in op || x.store === op.t;
  const products = w.products.filter(mine);
  const product = (pid: number) => products.find((p) => p.id === pid);
  const show = (p: Row) => ({ id: p.get('id'), name: p.get('name') });
  switch (op.k) {
    case 'findAll': {
      const rows = await withTenant(op.t, () =>
        Product.findAll({
          where: { price: { [Op.gte]: op.min } },
          order: [['id', op.desc ? 'DESC' : 'ASC']],
          ...(op.limit ? { limit: op.limit } : {}),
        }),
      );
      let exp = products.filter((p) => p.price >= op.min).sort(byId);
      if (op.desc) exp.reverse();
      if (op.limit) exp = exp.slice(0, op.limit);
      same(
        'findAll',
        rows.map(show),
        exp.map((p) => ({ id: p.id, name: p.name })),
      );
      return w;
    }
    case 'findOne': {
      const row = await withTenant(op.t, () => Product.findOne({ where: { id: op.id } }));
      const p = product(op.id);
      same('findOne', row ? show(row) : null, p ? { id: p.id, name: p.name } : null);
      return w;
    }
    case 'aggregate': {
      const got = await withTenant(op.t, () => (op.fn === 'count' ? Product.count() : Product[op.fn]('price')));
      const prices = products.map((p) => p.price);
      const exp =
        op.fn === 'count'
          ? prices.length
          : op.fn === 'sum'
            ? prices.length
              ? prices.reduce((a, b) => a + b, 0)
              : null
            : prices.length
              ? Math.max(...prices)
              : null;
      same(op.fn, got, exp);
      return w;
    }
    case 'include': {
      const rows = (await withTenant(op.t, () =>
        Product.findAll({
          include: [{ model: Purchase, required: op.required }],
          order: [['id', 'ASC']],
          ...(op.limit ? { limit: op.limit } : {}),
        }),
      )) as Row[];
      const purchasesOf = (pid: number) =>
        w.purchases
          .filter((u) => u.store === op.t && u.product_id === pid)
          .map((u) => u.id)
          .sort((a, b) => a - b);
      let exp = products.sort(byId).filter((p) => !op.required || purchasesOf(p.id).length > 0);
      if (op.limit) exp = exp.slice(0, op.limit);
      same(
        'include',
        rows.map((p) => [p.get('id'), (p.Purchases as Row[]).map((u) => u.get('id')).sort((a: number, b: number) => a - b)]),
        exp.map((p) => [p.id, purchasesOf(p.id)]),
      );
      return w;
    }
    case 'tags': {
      const rows = (await withTenant(op.t, () => Product.findAll({ include: [Tag], order: [['id', 'ASC']] }))) as Row[];
      const tagsOf = (pid: number) =>
        w.links
          .filter((l) => l.store === op.t && l.product_id === pid && w.tags.some((g) => g.store === op.t && g.id === l.tag_id))
          .map((l) => l.tag_id)
          .sort();
      same(
        'belongsToMany include',
        rows.map((p) => [p.get('id'), (p.Tags as Row[]).map((g) => g.get('id')).sort()]),
        products.sort(byId).map((p) => [p.id, tagsOf(p.id)]),
      );
      return w;
    }
    case 'create': {
      const exists = op.id !== null && product(op.id);
      try {
        const made = await withTenant(op.t, () =>
          Product.create({ ...(op.id !== null ? { id: op.id } : {}), name: `c${op.price}`, price: op.price }),
        );
        if (exists) throw new Violation(`create of an existing (${op.id}, ${op.t}) succeeded`);
        same('create stamped', made.get('store_id'), op.t);
        return {
          ...w,
          products: [...w.products, { id: made.get('id') as number, store: op.t, name: `c${op.price}`, price: op.price, stock: 0 }],
        };
      } catch (err) {
        if (exists && err instanceof UniqueConstraintError) return w;
        throw err;
      }
    }
    case 'createOther': {
      const o = other(op.t)[op.pick] as T;
      await refused('create with another tenant', () => withTenant(op.t, () => Product.create({ name: 'x', store_id: o })));
      return w;
    }
    case 'bulkCreate': {
      const made = await withTenant(op.t, () => Product.bulkCreate(op.prices.map((p) => ({ name: `b${p}`, price: p }))));
      return {
        ...w,
        products: [
          ...w.products,
          ...made.map((m, i) => ({
            id: m.get('id') as number,
            store: op.t,
            name: `b${op.prices[i]}`,
            price: op.prices[i] as number,
            stock: 0,
          })),
        ],
      };
    }
    case 'update': {
      const [n] = await withTenant(op.t, () => Product.update({ price: op.price }, { where: { id: op.id } }));
      same('update count', n, product(op.id) ? 1 : 0);
      return { ...w, products: w.products.map((p) => (p.store === op.t && p.id === op.id ? { ...p, price: op.price } : p)) };
    }
    case 'updateMove': {
      const o = other(op.t)[op.pick] as T;
      await refused('update moving rows', () => withTenant(op.t, () => Product.update({ store_id: o }, { where: { id: op.id } })));
      return w;
    }
    case 'save': {
      const row = await withTenant(op.t, () => Product.findOne({ where: { id: op.id } }));
      if (!row) return w;
      row.set('price', op.price);
      await withTenant(op.t, () => row.save());
      return { ...w, products: w.products.map((p) => (p.store === op.t && p.id === op.id ? { ...p, price: op.price } : p)) };
    }
    case 'saveCross': {
      const o = other(op.t)[op.pick] as T;
      const row = await withTenant(o, () => Product.findOne({ where: { id: op.id } }));
      if (!row) return w;
      row.set('name', 'stolen');
      await refused('save of another tenant row', () => withTenant(op.t, () => row.save()));
      return w;
    }
    case 'increment': {
      await withTenant(op.t, () => Product.increment('stock', { by: op.by, where: { id: op.id } }));
      return { ...w, products: w.products.map((p) => (p.store === op.t && p.id === op.id ? { ...p, stock: p.stock + op.by } : p)) };
    }
    case 'destroy': {
      const n = await withTenant(op.t, () => Product.destroy({ where: { id: op.id } }));
      same('destroy count', n, product(op.id) ? 1 : 0);
      return { ...w, products: w.products.filter((p) => !(p.store === op.t && p.id === op.id)) };
    }
    case 'upsert': {
      await withTenant(op.t, () => Product.upsert({ id: op.id, name: `u${op.price}`, price: op.price }));
      const existing = product(op.id);
      return {
        ...w,
        products: existing
          ? w.products.map((p) => (p.store === op.t && p.id === op.id ? { ...p, name: `u${op.price}`, price: op.price } : p))
          : [...w.products, { id: op.id, store: op.t, name: `u${op.price}`, price: op.price, stock: 0 }],
      };
    }
    case 'createPurchase': {
      const row = (await withTenant(op.t, () => Product.findOne({ where: { id: op.id } }))) as Row | null;
      if (!row) return w;
      const made = await withTenant(op.t, () => row.createPurchase({ qty: op.qty }));
      same('association create stamped', made.get('store_id'), op.t);
      return { ...w, purchases: [...w.purchases, { id: made.get('id') as number, store: op.t, product_id: op.id, qty: op.qty }] };
    }
    case 'getPurchases': {
      const row = (await withTenant(op.t, () => Product.findOne({ where: { id: op.id } }))) as Row | null;
      if (!row) return w;
      const got = (await withTenant(op.t, () => row.getPurchases())) as Row[];
      same(
        'association get',
        got.map((u) => u.get('id')).sort((a: number, b: number) => a - b),
        w.purchases
          .filter((u) => u.store === op.t && u.product_id === op.id)
          .map((u) => u.id)
          .sort((a, b) => a - b),
      );
      return w;
    }
    case 'unlinkPurchases': {
      const row = (await withTenant(op.t, () => Product.findOne({ where: { id: op.id } }))) as Row | null;
      if (!row) return w;
      await withTenant(op.t, () => row.setPurchases([]));
      return { ...w, purchases: w.purchases.map((u) => (u.store === op.t && u.product_id === op.id ? { ...u, product_id: null } : u)) };
    }
    case 'addTag': {
      const row = (await withTenant(op.t, () => Product.findOne({ where: { id: op.id } }))) as Row | null;
      if (!row) return w;
      const linked = w.links.some((l) => l.store === op.t && l.product_id === op.id && l.tag_id === op.tag);
      await withTenant(op.t, () => row.addTag(op.tag));
      return linked ? w : { ...w, links: [...w.links, { store: op.t, product_id: op.id, tag_id: op.tag }] };
    }
    case 'crossWhere': {
      const o = other(op.t)[op.pick] as T;
      same('explicit other tenant in where', (await withTenant(op.t, () => Product.findAll({ where: { store_id: o } }))).length, 0);
      return w;
    }
    case 'condFind': {
      const where = topWhere(f.sequelize, op.cond, op.form, op.pick);
      const read = () => {
        if (!op.viaScope) return Product.findAll({ where: where as never, hooks: op.hooks } as FindOptions);
        Product.addScope('fuzz', { where: where as never }, { override: true });
        return Product.scope('fuzz').findAll({ hooks: op.hooks } as FindOptions);
      };
      const rows = await withTenant(op.t, read);
      same(
        `findAll where ${op.form}: ${sqlText(op.cond)}`,
        rows.map((r) => [r.get('store_id'), r.get('id')]).sort(pair),
        products.filter((p) => holds(op.cond, p)).map((p) => [p.store, p.id]),
      );
      return w;
    }
    case 'condCount': {
      const n = await withTenant(op.t, () =>
        Product.count({ where: topWhere(f.sequelize, op.cond, op.form, op.pick) as never, hooks: op.hooks } as FindOptions),
      );
      same(`count where ${op.form}: ${sqlText(op.cond)}`, n, products.filter((p) => holds(op.cond, p)).length);
      return w;
    }
    case 'condUpdate': {
      await withTenant(op.t, () =>
        Product.update({ price: op.price }, { where: topWhere(f.sequelize, op.cond, op.form, op.pick) as never, hooks: op.hooks }),
      );
      return { ...w, products: w.products.map((p) => (mine(p) && holds(op.cond, p) ? { ...p, price: op.price } : p)) };
    }
    case 'condDestroy': {
      await withTenant(op.t, () => Product.destroy({ where: topWhere(f.sequelize, op.cond, op.form, op.pick) as never, hooks: op.hooks }));
      return { ...w, products: w.products.filter((p) => !(mine(p) && holds(op.cond, p))) };
    }
    case 'condInclude': {
      // Isolation, whatever the join kind: every row that comes back, at every level, is the tenant's.
      const cond = topWhere(f.sequelize, op.cond, op.form, op.pick, 'Purchases');
      const include: Record<string, unknown> = { model: Purchase, required: op.join === 'required' };
      if (op.join === 'right') include.right = true;
      if (op.join === 'separate') include.separate = true;
      if (op.at === 'on' && op.join !== 'separate') {
        include.on = f.sequelize.literal(`"Purchases"."product_id" = "Product"."id" OR ${sqlText(op.cond, 'Purchases')}`);
      } else {
        // Sequelize itself cannot take a literal where on a separate include (HasMany.get pushes onto it).
        include.where = op.join === 'separate' ? topWhere(f.sequelize, op.cond, 'pure object', op.pick) : cond;
        if (op.join === 'or') include.or = true;
      }
      const rows = (await withTenant(op.t, () =>
        Product.findAll({ include: [include as never], ...(op.limit ? { limit: op.limit, order: [['id', 'ASC']] } : {}) }),
      )) as Row[];
      const stores = rows.flatMap((p) => [
        p.get('store_id') ?? op.t, // a RIGHT JOIN row without a product has no product columns
        ...((p.Purchases as Row[]) ?? []).map((u) => u.get('store_id')),
      ]);
      same(
        `include ${op.join} ${op.at} ${op.form}: ${sqlText(op.cond)}`,
        [...new Set(stores)].filter((s) => s !== op.t),
        [],
      );
      if (op.join === 'left' && !op.limit && op.at === 'where') {
        same('include left keeps every product', rows.map((p) => p.get('id')).sort(), products.map((p) => p.id).sort());
      }
      return w;
    }
    case 'condThrough': {
      const where = topWhere(f.sequelize, op.cond, op.form, op.pick, 'Tags->ProductTag');
      const rows = (await withTenant(op.t, () =>
        Product.findAll({ include: [{ model: Tag, required: op.required, through: { where: where as never } }] }),
      )) as Row[];
      const stores = rows.flatMap((p) => [
        p.get('store_id'),
        ...(p.Tags as Row[]).flatMap((g) => [g.get('store_id'), (g.ProductTag as Row).get('store_id')]),
      ]);
      same(
        `through.where ${op.form}: ${sqlText(op.cond)}`,
        [...new Set(stores)].filter((s) => s !== op.t),
        [],
      );
      return w;
    }
    case 'qiSelect': {
      const rows = (await withTenant(op.t, () =>
        f.sequelize.getQueryInterface().select(null as never, nameTable('products', op.naming, schema) as string, {
          where: topWhere(f.sequelize, op.cond, op.form, op.pick) as never,
        }),
      )) as Array<{ id: number; store_id: number }>;
      same(
        `queryInterface.select(${op.naming}) ${op.form}: ${sqlText(op.cond)}`,
        rows.map((r) => [r.store_id, r.id]).sort(pair),
        products.filter((p) => holds(op.cond, p)).map((p) => [p.store, p.id]),
      );
      return w;
    }
    case 'qiUpdate': {
      await withTenant(op.t, () =>
        f.sequelize
          .getQueryInterface()
          .bulkUpdate(
            nameTable('products', op.naming, schema) as string,
            { price: op.price },
            topWhere(f.sequelize, op.cond, op.form, op.pick) as never,
            {},
          ),
      );
      return { ...w, products: w.products.map((p) => (mine(p) && holds(op.cond, p) ? { ...p, price: op.price } : p)) };
    }
    case 'qiDelete': {
      await withTenant(op.t, () =>
        f.sequelize
          .getQueryInterface()
          .bulkDelete(nameTable('products', op.naming, schema) as string, topWhere(f.sequelize, op.cond, op.form, op.pick) as never, {}),
      );
      return { ...w, products: w.products.filter((p) => !(mine(p) && holds(op.cond, p))) };
    }
    case 'qiIncrement': {
      const qi = f.sequelize.getQueryInterface() as unknown as {
        increment(m: null, t: unknown, w: unknown, a: object, e: object, o: object): Promise<unknown>;
      };
      await withTenant(op.t, () =>
        qi.increment(
          null,
          nameTable('products', op.naming, schema),
          topWhere(f.sequelize, op.cond, op.form, op.pick),
          { stock: 1 },
          {},
          {},
        ),
      );
      return { ...w, products: w.products.map((p) => (mine(p) && holds(op.cond, p) ? { ...p, stock: p.stock + 1 } : p)) };
    }
    case 'several': {
      same(
        'several tenants',
        await withTenant(op.ts, () => Product.count()),
        w.products.filter((p) => op.ts.includes(p.store as T)).length,
      );
      return w;
    }
  }
}

export interface FuzzReport {
  runs: number;
  operations: number;
  seed: number;
}

/** Runs the property: `runs` random sequences of up to `length` operations; throws on the first violation. */
export async function fuzz(f: Fixture, options: { runs: number; seed: number; length?: number }): Promise<FuzzReport> {
  let operations = 0;
  const [[current]] = (await withoutTenant(() => f.sequelize.query('SELECT current_schema() AS s'))) as [Array<{ s: string }>, unknown];
  schema = current?.s ?? 'public';
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 10, maxLength: options.length ?? 40, size: 'max' }), async (ops) => {
        await seed(f);
        let w = sorted(await load(f));
        for (const op of ops) {
          w = sorted(await step(f, w, op));
          operations++;
          const db = sorted(await load(f));
          same(`database after ${JSON.stringify(op)}`, db, w);
        }
      }),
      { numRuns: options.runs, seed: options.seed, endOnFailure: false },
    );
  } catch (err) {
    // fast-check keeps the failing operation's own error as the cause: show it with the counterexample.
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `\n${cause.name}: ${cause.message}` : '';
    throw new Error(`${(err as Error).message}${detail}`);
  }
  return { runs: options.runs, operations, seed: options.seed };
}
