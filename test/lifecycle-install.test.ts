// The tenant lifecycle through every way an application installs its models (#30): sequelize.define and
// Model.init with the plugin installed before or after them, sequelize-typescript (`models` and
// `addModels`), and `quoteIdentifiers: false` — each an export → delete → import that restores the rows
// read back through the models, a copy to a new tenant, the other tenant untouched. The install
// schema: stores, products, purchases → products, tags, product_tags (belongsToMany through).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { type Options, Sequelize } from 'sequelize';
import { Sequelize as TsSequelize } from 'sequelize-typescript';
import { copyTenant, deleteTenant, exportTenant, importTenant, multitenant, withoutTenant, withTenant } from '../src/index';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { type Models, plainModels, tsModels } from './helpers/install-models';

const test = anyTest as TestFn<{ db: TestDatabase }>;
test.before(async (t) => {
  t.context = { db: await createTestDatabase() };
});
test.after.always(async (t) => t.context?.db?.drop());

type Way =
  | 'define, plugin first'
  | 'define, models first'
  | 'Model.init'
  | 'sequelize-typescript models'
  | 'sequelize-typescript addModels'
  | 'quoteIdentifiers: false';
const WAYS: Way[] = [
  'define, plugin first',
  'define, models first',
  'Model.init',
  'sequelize-typescript models',
  'sequelize-typescript addModels',
  'quoteIdentifiers: false',
];

function build(db: TestDatabase, way: Way, p: string): { s: Sequelize; m: Models } {
  const options: Options = { logging: false, pool: { max: 1 } };
  const plugin = (s: Sequelize) => multitenant(s, { notice: false });
  if (way === 'sequelize-typescript models') {
    const m = tsModels(p);
    const s = new TsSequelize(db.url, { ...options, models: m.all }) as unknown as Sequelize;
    plugin(s);
    return { s, m };
  }
  if (way === 'sequelize-typescript addModels') {
    const s = new TsSequelize(db.url, options);
    plugin(s as unknown as Sequelize);
    const m = tsModels(p);
    s.addModels(m.all);
    return { s: s as unknown as Sequelize, m };
  }
  const s = new Sequelize(db.url, { ...options, ...(way === 'quoteIdentifiers: false' ? { quoteIdentifiers: false } : {}) });
  if (way === 'define, models first') {
    const m = plainModels(s, p, 'define');
    plugin(s);
    return { s, m };
  }
  plugin(s);
  return { s, m: plainModels(s, p, way === 'Model.init' ? 'init' : 'define') };
}

/** Every row of every model, through the models (no raw SQL), in a stable order. */
async function everything(m: Models): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [name, model] of Object.entries(m)) {
    if (name === 'all') continue;
    const order = Object.keys(model.getAttributes()).map((a) => [a, 'ASC'] as [string, string]);
    out[name] = await withoutTenant(() => model.findAll({ raw: true, order }));
  }
  return out;
}

for (const [i, way] of WAYS.entries()) {
  test.serial(`${way}: export → delete → import restores every row; copy makes a new tenant; the other tenant untouched`, async (t) => {
    const p = `lc${i}`;
    const { s, m } = build(t.context.db, way, p);
    const dir = mkdtempSync(join(tmpdir(), 'smt-lc-install-'));
    try {
      await withoutTenant(() => s.sync({ force: true }));
      for (const store of [1, 2]) {
        await withoutTenant(() => m.Store.create({ id: store, name: `store ${store}` }));
        await withTenant(store, async () => {
          await m.Product.bulkCreate([1, 2, 3].map((id) => ({ id, name: `p${id}` })));
          await m.Purchase.bulkCreate([1, 2].map((id) => ({ id, product_id: id })));
          await m.Tag.bulkCreate([{ id: 1, label: 'red' }]);
          await m.ProductTag.bulkCreate([{ product_id: 1, tag_id: 1 }]);
        });
      }
      const before = await everything(m);
      const manifest = await exportTenant(s, 1, { to: join(dir, 'e') });
      const rows = Object.fromEntries(manifest.tables.map((x) => [x.table, x.rows]));
      t.deepEqual(rows, { [`${p}_stores`]: 1, [`${p}_products`]: 3, [`${p}_purchases`]: 2, [`${p}_tags`]: 1, [`${p}_product_tags`]: 1 });
      const at = (name: string) => manifest.tables.findIndex((x) => x.table === `${p}_${name}`);
      t.true(at('products') < at('purchases') && at('products') < at('product_tags') && at('tags') < at('product_tags'), 'parents first');
      t.is(manifest.tables[0]?.table, `${p}_stores`, 'the tenant table first');
      t.is((await deleteTenant(s, 1, { confirm: 1 })).total, 8);
      const afterDelete = await everything(m);
      t.deepEqual(afterDelete.Store, [{ id: '2', name: 'store 2' }]);
      await importTenant(s, join(dir, 'e'));
      t.deepEqual(await everything(m), before);
      const copied = await copyTenant(s, 1, 3, { confirm: 3 });
      t.is(copied.total, 8);
      t.is((await withTenant(3, () => m.Product.count())) as number, 3);
      t.deepEqual((await everything(m)).Store, [
        { id: '1', name: 'store 1' },
        { id: '2', name: 'store 2' },
        { id: '3', name: 'store 1' },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await s.close();
    }
  });
}
