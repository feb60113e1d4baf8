// Against a real Citus coordinator: CITUS_URL=postgres://... npm test (or npm run test:citus).
// Without CITUS_URL every test here is reported as skipped.
import { randomBytes } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { DataTypes, type Model, Op, QueryTypes, Sequelize } from 'sequelize';
import {
  addTenantForeignKey,
  createDistributedTable,
  createReferenceTable,
  MultitenantError,
  multitenant,
  routerOnly,
  undistributeTable,
  withoutTenant,
  withTenant,
} from '../src/index';
import { defineSchemaModels, type SchemaModels } from './helpers/schema-models';

interface Ctx {
  sequelize: Sequelize;
  schema: string;
  models: SchemaModels;
  notices: string[];
}
const url = process.env.CITUS_URL;
const test = anyTest as TestFn<Ctx>;
const citusTest = url ? test.serial : test.skip;

if (url) {
  test.before(async (t) => {
    const schema = `smt_citus_${process.pid}_${randomBytes(3).toString('hex')}`;
    const notices: string[] = [];
    const sequelize = new Sequelize(url, { logging: false, pool: { max: 8 } });
    await sequelize.query(`CREATE SCHEMA ${schema}`);
    multitenant(sequelize, { notice: (m) => notices.push(m) });
    const models = defineSchemaModels(sequelize, schema, { citus: true });
    await sequelize.sync();
    process.stderr.write(`[test db] citus: ${new URL(url).host} (schema ${schema})\n`);
    t.context = { sequelize, schema, models, notices };
  });
  test.after.always(async (t) => {
    if (!t.context?.sequelize) return;
    await t.context.sequelize.query(`DROP SCHEMA ${t.context.schema} CASCADE`);
    await t.context.sequelize.close();
  });
}

// biome-ignore lint/suspicious/noExplicitAny: association accessors
type Row = Model & Record<string, any>;

citusTest(
  'sync distributes tenant tables on their tenant column, colocated with the tenant table, and makes reference tables',
  async (t) => {
    const { sequelize, schema } = t.context;
    const [rows] = await sequelize.query(
      `SELECT logicalrelid::text AS t, partmethod AS m, column_to_column_name(logicalrelid, partkey) AS col, colocationid AS g
       FROM pg_dist_partition WHERE logicalrelid::text LIKE '${schema}.%' ORDER BY 1`,
    );
    const table = (name: string) =>
      (rows as Array<{ t: string; m: string; col: string | null; g: number }>).find((r) => r.t === `${schema}.${name}`);
    t.is(table('countries')?.m, 'n');
    t.deepEqual([table('stores')?.m, table('stores')?.col], ['h', 'id']);
    for (const name of ['products', 'purchases', 'tags', 'product_tags', 'labels', 'product_labels']) {
      t.deepEqual([table(name)?.m, table(name)?.col, table(name)?.g], ['h', 'store_id', table('stores')?.g], name);
    }
  },
);

citusTest('tenant-aware foreign keys exist between the distributed tables', async (t) => {
  const { sequelize, schema } = t.context;
  const [rows] = await sequelize.query(
    `SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE contype = 'f' AND connamespace = '${schema}'::regnamespace ORDER BY 1, 2`,
  );
  const defs = (rows as Array<{ t: string; def: string }>).map(
    (r) => `${r.t.replace(`${schema}.`, '')}: ${r.def.replaceAll(`${schema}.`, '')}`,
  );
  t.true(
    defs.includes('purchases: FOREIGN KEY (store_id, product_id) REFERENCES products(store_id, id) ON DELETE CASCADE'),
    defs.join('\n'),
  );
  t.true(
    defs.some((d) => d.startsWith('products: FOREIGN KEY (store_id) REFERENCES stores(id)')),
    defs.join('\n'),
  );
  t.true(
    defs.some((d) => d.startsWith('products: FOREIGN KEY (country_code) REFERENCES countries(code)')),
    defs.join('\n'),
  );
  t.true(
    defs.some((d) => d.startsWith('product_tags: FOREIGN KEY (store_id, tag_id) REFERENCES tags(store_id, id)')),
    defs.join('\n'),
  );
  t.true(
    defs.some((d) => d.startsWith('product_labels: FOREIGN KEY (store_id, label_id) REFERENCES labels(store_id, id)')),
    defs.join('\n'),
  );
});

citusTest('a second sync changes nothing', async (t) => {
  const { sequelize } = t.context;
  const catalog = async () => [
    await sequelize.query(
      `SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS d FROM pg_constraint
        WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2`,
      { type: QueryTypes.SELECT },
    ),
    await sequelize.query(
      `SELECT logicalrelid::text AS t, partmethod, colocationid FROM pg_dist_partition
        WHERE logicalrelid::text NOT LIKE '%.%' ORDER BY 1`,
      { type: QueryTypes.SELECT },
    ),
  ];
  const before = await catalog();
  const sent: string[] = [];
  await sequelize.sync({ logging: (sql: string) => void sent.push(sql) });
  t.deepEqual(
    sent.filter(
      (sql) => /\b(CREATE|ALTER|DROP)\b|create_distributed_table|create_reference_table/i.test(sql) && !/IF NOT EXISTS/.test(sql),
    ),
    [],
    'no DDL on the second sync',
  );
  t.true(sent.length > 0, 'the sync ran (its statements were seen)');
  t.deepEqual(await catalog(), before);
});

citusTest('a tenant model whose primary key lacks the tenant column is refused with the fix, not distributed', async (t) => {
  const { sequelize, schema } = t.context;
  const Loose = sequelize.define(
    'Loose',
    { id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true }, store_id: DataTypes.BIGINT },
    { schema, tableName: 'loose', tenantKey: 'store_id', timestamps: false },
  );
  const err = await t.throwsAsync(() => Loose.sync(), { instanceOf: MultitenantError });
  t.regex(
    err?.message ?? '',
    /^Loose\.sync: Loose: primary key \(id\) does not include the tenant column store_id; Citus refuses to distribute it .* Use a composite key \(store_id, id\)\.; nothing was created/,
  );
  // refused before its CREATE TABLE: nothing is left half-made
  const [[found]] = (await sequelize.query(`SELECT to_regclass('${schema}.loose')::text AS t`)) as [Array<{ t: string | null }>, unknown];
  t.is(found?.t, null);
  (sequelize as unknown as { modelManager: { removeModel(m: unknown): void } }).modelManager.removeModel(Loose);
  await sequelize.query(`DROP TABLE IF EXISTS ${schema}.loose`);
});

citusTest('router-only: every ORM path under one tenant runs on one shard (citus.multi_task_query_log_level = error)', async (t) => {
  const { sequelize } = t.context;
  const { Store, Country, Product, Purchase, Tag, ProductTag } = t.context.models;
  await withoutTenant(async () => {
    await Country.bulkCreate([{ code: 'DE', name: 'Germany' }]);
    await Store.bulkCreate([
      { id: 1, name: 'A' },
      { id: 2, name: 'B' },
    ]);
  });
  await withTenant(2, () => Product.bulkCreate([{ id: 1, name: 'b-apple' }]));
  routerOnly(sequelize);
  const seen: unknown[] = [];
  await withTenant(1, async () => {
    const apple = (await Product.create({ id: 1001, name: 'apple', country_code: 'DE' })) as Row;
    await Product.bulkCreate([{ id: 1002, name: 'pear' }]);
    const red = (await Tag.create({ label: 'red' })) as Row;
    await apple.addTag(red);
    await apple.createPurchase({ qty: 2 });
    await Purchase.bulkCreate([{ product_id: 1002, qty: 1 }]);
    seen.push((await Product.findAll({ include: [Purchase, Tag, Country, Store], order: [['id', 'ASC']] })).length);
    seen.push((await Product.findAll({ include: [Purchase], limit: 1, order: [['id', 'ASC']] })).length);
    seen.push((await Product.findAll({ include: [{ model: Purchase, required: true, where: { qty: { [Op.gt]: 1 } } }], limit: 5 })).length);
    seen.push((await Product.findAll({ include: [{ model: Tag, required: true }], limit: 5 })).length);
    seen.push(await Product.count({ include: [Purchase], distinct: true }));
    seen.push((await Product.findAndCountAll({ include: [Tag], limit: 1 })).count);
    seen.push((await Product.findOne({ where: { id: 1001 } }))?.get('name'));
    seen.push(await Purchase.sum('qty'));
    seen.push(await Purchase.max('qty'));
    seen.push((await apple.getTags()).length, await apple.countPurchases(), await apple.hasTag(red));
    await Product.update({ stock: 5 }, { where: { id: 1001 } });
    await Product.increment('stock', { where: { id: 1002 } });
    await apple.update({ name: 'apple2' });
    await apple.increment('stock');
    await Product.upsert({ id: 1002, name: 'pear2' });
    await Product.bulkCreate([{ id: 1003, name: 'plum' }], { updateOnDuplicate: ['name'] });
    await apple.setTags([]);
    await ProductTag.count();
    await Store.findAll();
    await Purchase.destroy({ where: { qty: 1 } });
    await Product.destroy({ where: { id: 1003 } });
    const [found] = await Product.findOrCreate({ where: { name: 'kiwi' } });
    seen.push(found.get('store_id'));
    await Purchase.destroy({ truncate: true });
  });
  t.deepEqual(seen, [2, 1, 1, 1, 2, 2, 'apple', 3, 2, 1, 1, true, '1']);
  // The proof has teeth: a statement that fans out, sent under a tenant, fails.
  await t.throwsAsync(() => withTenant(1, () => sequelize.query(`SELECT count(*) FROM ${t.context.schema}.products`)), {
    message: /multi-(task|shard)/i,
  });
  // Unscoped work is not checked.
  const [[all]] = (await withoutTenant(() => sequelize.query(`SELECT count(*)::int AS n FROM ${t.context.schema}.products`))) as [
    Array<{ n: number }>,
    unknown,
  ];
  t.is(all?.n, 4);
});

citusTest('migration helpers on Citus: distribute (colocated), undistribute, reference table, tenant foreign key', async (t) => {
  const { sequelize, schema } = t.context;
  const qi = sequelize.getQueryInterface();
  const table = { tableName: 'notes', schema };
  await sequelize.query(
    `CREATE TABLE ${schema}.notes (id bigserial, store_id bigint NOT NULL, product_id bigint, PRIMARY KEY (store_id, id))`,
  );
  await sequelize.query(`CREATE TABLE ${schema}.units (code text PRIMARY KEY)`);
  const stores = { tableName: 'stores', schema };
  t.true(await createDistributedTable(qi, table, 'store_id', { colocateWith: stores }));
  t.false(await createDistributedTable(qi, table, 'store_id', { colocateWith: stores }));
  t.true(
    await addTenantForeignKey(qi, table, {
      tenantColumn: 'store_id',
      columns: ['product_id'],
      references: { table: { tableName: 'products', schema }, columns: ['id'] },
    }),
  );
  const [[g]] = (await sequelize.query(
    `SELECT count(DISTINCT colocationid)::int AS n FROM pg_dist_partition WHERE logicalrelid IN ('${schema}.notes'::regclass, '${schema}.stores'::regclass)`,
  )) as [Array<{ n: number }>, unknown];
  t.is(g?.n, 1);
  t.true(await createReferenceTable(qi, { tableName: 'units', schema }));
  await sequelize.query(`ALTER TABLE ${schema}.notes DROP CONSTRAINT notes_store_id_product_id_fkey`);
  t.true(await undistributeTable(qi, table));
  t.false(await undistributeTable(qi, table));
});
