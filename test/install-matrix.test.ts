// Every way an application installs the library gets every protection. Cells: definition style
// (sequelize.define, Model.init, sequelize-typescript with `new Sequelize({ models })`, with
// `addModels`) × models defined before or after multitenant() × rls off / on. Each cell syncs the same
// schema — stores (the tenant table), products, purchases → products, tags, product_tags (belongsToMany
// through a model) — and checks, with two tenants sharing keys: reads scoped (rows and the SQL sent),
// create / bulkCreate / upsert stamped and another tenant refused, the composite tenant foreign keys in
// the catalog and enforced by the database, under rls the policies (ENABLE, FORCE, one each) and raw SQL
// kept to the tenant, on Citus (npm run test:citus) every tenant table distributed and colocated.
import 'reflect-metadata';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { type Model, type Options, QueryTypes, Sequelize, Model as SequelizeModel } from 'sequelize';
import { Sequelize as TsSequelize } from 'sequelize-typescript';
import { MultitenantError, multitenant, TenantMismatchError, UnscopedQueryError, withoutTenant, withTenant } from '../src/index';
import { onCitus } from './helpers/db';
import { auditMode } from './helpers/fixture';
import { type Models, plainModels, tsModels } from './helpers/install-models';
import { createRlsDatabase, type RlsDatabase } from './helpers/rls';

type Style = 'define' | 'init' | 'ts-models' | 'ts-addModels';
type Order = 'before' | 'after';
interface Cell {
  style: Style;
  order: Order;
  rls: boolean;
  /** The prefix of the cell's table names. */
  p: string;
}
const CELLS: Cell[] = [false, true].flatMap((rls, r) =>
  (
    [
      ['define', 'before'],
      ['define', 'after'],
      ['init', 'before'],
      ['init', 'after'],
      ['ts-models', 'before'],
      ['ts-addModels', 'before'],
      ['ts-addModels', 'after'],
    ] as Array<[Style, Order]>
  ).map(([style, order], i) => ({ style, order, rls, p: `im${r * 7 + i}` })),
);

interface Built {
  s: Sequelize;
  m: Models;
  sent: string[];
}
const test = anyTest as TestFn<{ db: RlsDatabase; before: Map<string, Built> }>;
const factories = { belongsTo: SequelizeModel.belongsTo, hasMany: SequelizeModel.hasMany, init: SequelizeModel.init };
test.before(async (t) => {
  const db = await createRlsDatabase();
  // the cells whose models come before multitenant() are built now, before this process's first
  // multitenant() wraps Sequelize's base Model (its init and association factories): as in an application,
  // where the install that comes after the models is the first one
  const before = new Map<string, Built>();
  for (const c of CELLS.filter((c) => c.order === 'before')) {
    const sent: string[] = [];
    before.set(c.p, { ...build(db, c.style, c.p, c.rls, sent, false), sent });
  }
  if (
    SequelizeModel.belongsTo !== factories.belongsTo ||
    SequelizeModel.hasMany !== factories.hasMany ||
    SequelizeModel.init !== factories.init
  ) {
    throw new Error('Model was wrapped before the "before" cells were built');
  }
  t.context = { db, before };
});
test.after.always(async (t) => t.context?.db?.drop());

/** Builds a cell's instance and models, the plugin installed first when `install` says so. */
function build(db: RlsDatabase, style: Style, p: string, rls: boolean, sent: string[], install: boolean): { s: Sequelize; m: Models } {
  const options: Options = { logging: (sql) => sent.push(sql), ...db.connectOptions() };
  const plugin = (s: Sequelize) => multitenant(s, { notice: false, rls });
  if (style === 'ts-models') {
    const m = tsModels(p);
    return { s: new TsSequelize(db.url, { ...options, models: m.all }) as unknown as Sequelize, m };
  }
  if (style === 'ts-addModels') {
    const s = new TsSequelize(db.url, options);
    if (install) plugin(s as unknown as Sequelize);
    const m = tsModels(p);
    s.addModels(m.all);
    return { s: s as unknown as Sequelize, m };
  }
  const s = new Sequelize(db.url, options);
  if (install) plugin(s);
  return { s, m: plainModels(s, p, style) };
}

/** The cell's instance and models in its order: built in test.before and installed now, or installed first. */
function install(t: ExecutionContext<{ db: RlsDatabase; before: Map<string, Built> }>, c: Cell): Built {
  if (c.order === 'after') {
    const sent: string[] = [];
    return { ...build(t.context.db, c.style, c.p, c.rls, sent, true), sent };
  }
  const built = t.context.before.get(c.p) as Built;
  multitenant(built.s, { notice: false, rls: c.rls });
  built.sent.length = 0;
  return built;
}

const rowsOf = async <T>(s: Sequelize, sql: string): Promise<T[]> => (await s.query(sql, { type: QueryTypes.SELECT })) as T[];
const names = (rows: Model[]) => rows.map((r) => String(r.get('name'))).sort();

async function cell(t: ExecutionContext<{ db: RlsDatabase; before: Map<string, Built> }>, c: Cell): Promise<void> {
  const { rls, p } = c;
  const { s, m, sent } = install(t, c);
  const { Store, Product, Purchase, Tag, ProductTag } = m;
  try {
    await s.sync();

    // the composite tenant foreign keys, in the catalog
    const keys = await rowsOf<{ t: string; d: string }>(
      s,
      `SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS d FROM pg_constraint
        WHERE contype = 'f' AND conrelid::regclass::text LIKE '${p}\\_%' AND array_length(conkey, 1) = 2`,
    );
    t.deepEqual(
      keys.map((k) => `${k.t}: ${/^FOREIGN KEY \([^)]*\) REFERENCES [^(]*\([^)]*\)/.exec(k.d)?.[0]}`).sort(),
      [
        `${p}_product_tags: FOREIGN KEY (store_id, product_id) REFERENCES ${p}_products(store_id, id)`,
        `${p}_product_tags: FOREIGN KEY (store_id, tag_id) REFERENCES ${p}_tags(store_id, id)`,
        `${p}_purchases: FOREIGN KEY (store_id, product_id) REFERENCES ${p}_products(store_id, id)`,
      ],
      'the tenant foreign keys',
    );

    // two tenants sharing product and tag keys; product 3 exists in store 1 only
    await withoutTenant(async () => {
      await Store.bulkCreate([
        { id: 1, name: 'one' },
        { id: 2, name: 'two' },
      ]);
      await Product.bulkCreate([
        ...[1, 2, 3].map((id) => ({ store_id: 1, id, name: `s1-${id}` })),
        ...[1, 2].map((id) => ({ store_id: 2, id, name: `s2-${id}` })),
      ]);
      await Tag.bulkCreate([1, 2].map((store_id) => ({ store_id, id: 1, label: `t${store_id}` })));
      await ProductTag.bulkCreate([1, 2].map((store_id) => ({ store_id, product_id: 1, tag_id: 1 })));
    });
    // the database refuses a purchase of store 2 pointing at store 1's product, and a tag link across stores
    const crossPurchase = await withoutTenant(() => Purchase.create({ store_id: 2, id: 50, product_id: 3 })).catch((e: Error) => e);
    t.is((crossPurchase as Error).name, 'SequelizeForeignKeyConstraintError', 'a purchase pointing at another tenant’s product');
    const crossLink = await withoutTenant(() => ProductTag.create({ store_id: 2, product_id: 3, tag_id: 1 })).catch((e: Error) => e);
    t.is((crossLink as Error).name, 'SequelizeForeignKeyConstraintError', 'a through row pointing at another tenant’s product');

    // reads scoped: the rows, and the predicate in the SQL sent
    sent.length = 0;
    t.deepEqual(names(await withTenant(2, () => Product.findAll())), ['s2-1', 's2-2']);
    t.regex(sent.join('\n'), new RegExp(`FROM "${p}_products" AS "Product" WHERE "Product"."store_id" = '?2'?;`));
    t.deepEqual(names(await withTenant(1, () => Product.findAll())), ['s1-1', 's1-2', 's1-3']);
    t.is(await withTenant(2, () => Product.findByPk(3)), null, 'store 1’s product 3 is not found under store 2');
    const tagged = await withTenant(2, () => Product.findAll({ include: [{ model: Tag }], where: { id: 1 } }));
    t.deepEqual(
      tagged.map(
        (r) => (r.get('Tags') as Model[] | undefined)?.map((g) => g.get('label')) ?? (r.get('tags') as Model[]).map((g) => g.get('label')),
      ),
      [['t2']],
    );

    // writes stamped, another tenant refused with nothing written
    const created = await withTenant(2, () => Purchase.create({ id: 10, product_id: 1 }));
    t.is(String(created.get('store_id')), '2');
    await withTenant(2, () => Purchase.bulkCreate([{ id: 11, product_id: 2 }]));
    await withTenant(2, () => Purchase.upsert({ id: 10, product_id: 2 }));
    const refused = await withTenant(2, () => Purchase.create({ id: 12, store_id: 1, product_id: 1 })).catch((e: Error) => e);
    t.true(refused instanceof TenantMismatchError, `another tenant's create refused: ${String(refused)}`);
    const purchases = await withoutTenant(() => Purchase.findAll({ order: [['id', 'ASC']] }));
    t.deepEqual(
      purchases.map((r) => [String(r.get('store_id')), String(r.get('id')), String(r.get('product_id'))]),
      [
        ['2', '10', '2'],
        ['2', '11', '2'],
      ],
    );

    if (rls) {
      // ENABLE + FORCE and one policy on every tenant table; raw SQL kept to the tenant, nothing without one
      const tables = await rowsOf<{ t: string; enabled: boolean; forced: boolean; policies: number }>(
        s,
        `SELECT c.relname AS t, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
                (SELECT count(*)::int FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = n.nspname) AS policies
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND c.relname LIKE '${p}\\_%' AND n.nspname = current_schema() ORDER BY 1`,
      );
      t.deepEqual(
        tables,
        ['product_tags', 'products', 'purchases', 'stores', 'tags'].map((x) => ({
          t: `${p}_${x}`,
          enabled: true,
          forced: true,
          policies: 1,
        })),
      );
      const raw = (tenant?: number) => {
        const read = () => rowsOf<{ store_id: string }>(s, `SELECT DISTINCT store_id FROM ${p}_products ORDER BY 1`);
        return tenant === undefined ? read() : withTenant(tenant, read);
      };
      if (auditMode === 'throw') {
        // the auditor (SEQUELIZE_MULTITENANT_AUDIT=throw) refuses the unscoped raw read before the policy
        // could filter it; with no tenant (not strict) it lets it run, and the policy shows nothing
        await t.throwsAsync(() => raw(1), { instanceOf: UnscopedQueryError });
      } else t.deepEqual(await raw(1), [{ store_id: '1' }]);
      t.deepEqual(await raw(), [], 'no tenant: no rows');
    }

    if (onCitus) {
      const dist = await rowsOf<{ t: string; method: string; col: string; colocated: boolean }>(
        s,
        `SELECT logicalrelid::regclass::text AS t, partmethod AS method, column_to_column_name(logicalrelid, partkey) AS col,
                colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '${p}_stores'::regclass) AS colocated
           FROM pg_dist_partition WHERE logicalrelid::regclass::text LIKE '${p}\\_%' ORDER BY 1`,
      );
      t.deepEqual(
        dist,
        ['product_tags', 'products', 'purchases', 'stores', 'tags'].map((x) => ({
          t: `${p}_${x}`,
          method: 'h',
          col: x === 'stores' ? 'id' : 'store_id',
          colocated: true,
        })),
      );
    }
  } catch (err) {
    if (err instanceof MultitenantError) t.fail(`${err.name}: ${err.message}`);
    throw err;
  } finally {
    await s.close();
  }
}

for (const c of CELLS) {
  test.serial(`${c.style}, models ${c.order} multitenant(), rls ${c.rls ? 'on' : 'off'}: every protection`, (t) => cell(t, c));
}
