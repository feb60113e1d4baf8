// sequelize-typescript loaded after multitenant() has wrapped the static methods of Sequelize's base
// Model: its copies of them are then the library's wrappers, and its models pass through each wrapper
// twice (once on its Model class, once on the base). Every protection must still be applied, and once:
// one policy per tenant table, one tenant foreign key, one stamped row per create.
import test from 'ava';
import { QueryTypes, Sequelize } from 'sequelize';
import { multitenant, withoutTenant, withTenant } from '../src/index';
import { createRlsDatabase } from './helpers/rls';

test('sequelize-typescript loaded after multitenant(): every protection, applied once', async (t) => {
  const db = await createRlsDatabase();
  try {
    const first = new Sequelize(db.url, { logging: false, ...db.connectOptions() });
    multitenant(first, { notice: false, rls: true });
    await first.close();
    t.false(
      Object.keys(require.cache).some((path) => path.includes('/sequelize-typescript/')),
      'sequelize-typescript is not loaded yet',
    );
    const { Sequelize: TsSequelize } = await import('sequelize-typescript');
    const { plainModels, tsModels } = await import('./helpers/install-models');
    // the reference: the same schema through sequelize.define, counted the same way
    const counted = async (s: Sequelize, sent: string[]) => {
      await s.sync();
      const count = (pattern: RegExp) => sent.filter((sql) => pattern.test(sql)).length;
      return {
        policies: count(/CREATE POLICY/),
        keys: count(/ADD CONSTRAINT \S+ FOREIGN KEY \("store_id", "(product|tag)_id"\)/),
        policyReads: count(/SELECT c\.relrowsecurity AS enabled/),
        keyReads: count(/FROM pg_constraint c WHERE c\.conrelid = to_regclass/),
      };
    };
    const refSent: string[] = [];
    const ref = new Sequelize(db.url, { logging: (sql) => refSent.push(sql), ...db.connectOptions() });
    multitenant(ref, { notice: false, rls: true });
    plainModels(ref, 'lr', 'define');
    const expected = await counted(ref, refSent);
    await ref.close();
    t.like(expected, { policies: 5, keys: 3 });

    const sent: string[] = [];
    const m = tsModels('lo');
    const s = new TsSequelize(db.url, { logging: (sql) => sent.push(sql), ...db.connectOptions(), models: m.all }) as unknown as Sequelize;
    multitenant(s, { notice: false, rls: true });
    try {
      // each wrapper's work done once: every statement of the protections as often as on the define path
      t.deepEqual(await counted(s, sent), expected);
      const count = (pattern: RegExp) => sent.filter((sql) => pattern.test(sql)).length;
      const policies = await s.query(`SELECT tablename FROM pg_policies WHERE tablename LIKE 'lo\\_%' ORDER BY 1`, {
        type: QueryTypes.SELECT,
      });
      t.deepEqual(
        policies,
        ['lo_product_tags', 'lo_products', 'lo_purchases', 'lo_stores', 'lo_tags'].map((tablename) => ({ tablename })),
      );
      await withoutTenant(async () => {
        await m.Store.bulkCreate([{ id: 1 }, { id: 2 }]);
        await m.Product.bulkCreate([1, 2].map((store_id) => ({ store_id, id: 1, name: `s${store_id}` })));
      });
      sent.length = 0;
      await withTenant(2, () => m.Purchase.bulkCreate([{ id: 1, product_id: 1 }]));
      t.is(count(/^Executing \(default\): INSERT INTO "lo_purchases"/), 1, 'one INSERT');
      const rows = await withoutTenant(() => m.Purchase.findAll());
      t.deepEqual(
        rows.map((r) => [String(r.get('store_id')), String(r.get('id'))]),
        [['2', '1']],
      );
      t.deepEqual(
        (await withTenant(1, () => m.Product.findAll())).map((r) => r.get('name')),
        ['s1'],
      );
    } finally {
      await s.close();
    }
  } finally {
    await db.drop();
  }
});
