// queryInterface calls that name a tenant model's table without the model (or with a global model): the
// table decides, for every method and every way of naming the table. Two tenants share keys.
import anyTest, { type TestFn } from 'ava';
import { MissingTenantError, MultitenantError, withoutTenant, withTenant } from '../src/index';
import { createFixture, type Fixture } from './helpers/fixture';

interface Ctx extends Fixture {
  strictFixture: Fixture;
}
/** The schema the tables live in: public, or the test's own schema on Citus (search_path). */
let schema = 'public';
const test = anyTest as TestFn<Ctx>;
test.before(async (t) => {
  const f = await createFixture();
  t.context = Object.assign(f, { strictFixture: await createFixture({ strict: true }) });
  const [rows] = await withoutTenant(() => f.sequelize.query('SELECT current_schema() AS s'));
  schema = (rows as Array<{ s: string }>)[0]?.s ?? 'public';
});
test.after.always(async (t) => {
  await t.context?.close();
  await t.context?.strictFixture?.close();
});
test.beforeEach(async (t) => {
  await t.context.reset();
  await t.context.strictFixture.reset();
});

// biome-ignore lint/suspicious/noExplicitAny: the query interface's loose signatures
type QI = any;
const namings = (f: Fixture): Array<[string, unknown]> => [
  ['a string', 'notes'],
  ['{ tableName, schema }', { tableName: 'notes', schema }],
  ['{ tableName }', { tableName: 'notes' }],
  ['Model.getTableName()', f.Note.getTableName()],
  ['a quoted string', '"notes"'],
  ['{ tableName: quoted }', { tableName: '"notes"' }],
];
test.serial('select and rawSelect without a model are scoped by the table, however it is named', async (t) => {
  const { sequelize, Note, Category, capture } = t.context;
  const qi: QI = sequelize.getQueryInterface();
  for (const [how, table] of namings(t.context)) {
    const { result, sql } = await capture(() => withTenant(1, () => qi.select(null, table, { where: {} })));
    t.deepEqual(
      (result as Array<{ acc_id: number }>).map((r) => r.acc_id),
      [1],
      `select: ${how}`,
    );
    t.regex(sql[0] as string, /"acc_id" = 1/, how);
    const count = await withTenant(1, () => qi.rawSelect(table, { where: {} }, 'id', null));
    t.is(count, 1, `rawSelect: ${how}`);
  }
  // a global model handed with a tenant table does not unscope it
  const rows = await withTenant(2, () => qi.select(Category, 'notes', { where: {}, raw: true }));
  t.deepEqual(
    (rows as Array<{ acc_id: number }>).map((r) => r.acc_id),
    [2],
  );
  t.is(await withTenant(2, () => qi.rawSelect('notes', { where: { id: 1 } }, 'body', Category)), null);
  // a select from several tables that include a tenant table is refused under a tenant
  await t.throwsAsync(() => withTenant(1, () => qi.select(null, ['notes', 'categories'], {})), {
    instanceOf: MultitenantError,
    message: /several tables/,
  });
  t.is((await withoutTenant(() => qi.select(null, ['notes', 'categories'], {}))).length, 4);
  t.is(Note.name, 'Note');
});

test.serial('bulkUpdate, bulkDelete, increment, decrement, insert and bulkInsert without a model are scoped by the table', async (t) => {
  const { sequelize, rows } = t.context;
  const qi: QI = sequelize.getQueryInterface();
  for (const [how, table] of namings(t.context)) {
    await t.context.reset();
    await withTenant(1, () => qi.bulkUpdate(table, { body: 'x' }, {}, {}));
    t.deepEqual(
      (await rows('notes')).map((r) => r.body),
      ['x', 'note-B'],
      `bulkUpdate: ${how}`,
    );
    await withTenant(1, () => qi.increment(null, table, {}, { id: 100 }, {}, {}));
    await withTenant(2, () => qi.decrement(null, table, { id: 2 }, { id: 1 }, {}, {}));
    t.deepEqual(
      (await rows('notes')).map((r) => [r.id, r.acc_id]),
      [
        [1, 2],
        [101, 1],
      ],
      `increment/decrement: ${how}`,
    );
    await withTenant(2, () => qi.bulkDelete(table, {}, {}));
    t.deepEqual(
      (await rows('notes')).map((r) => r.acc_id),
      [1],
      `bulkDelete: ${how}`,
    );
    await withTenant(2, () => qi.insert(null, table, { id: 50, body: 'ins' }, {}));
    await withTenant(2, () => qi.bulkInsert(table, [{ id: 51, body: 'bulk' }], {}));
    t.deepEqual(
      (await rows('notes')).map((r) => [r.id, r.acc_id]),
      [
        [50, 2],
        [51, 2],
        [101, 1],
      ],
      `insert/bulkInsert stamped: ${how}`,
    );
    await t.throwsAsync(() => withTenant(2, () => qi.insert(null, table, { id: 52, body: 'x', acc_id: 1 }, {})), {
      instanceOf: MultitenantError,
    });
  }
});

test.serial('strict mode: queryInterface calls on a tenant table with no tenant are refused, nothing sent', async (t) => {
  const { sequelize, capture } = t.context.strictFixture;
  const qi: QI = sequelize.getQueryInterface();
  const calls: Array<() => Promise<unknown>> = [
    () => qi.select(null, 'notes', {}),
    () => qi.rawSelect('notes', {}, 'id'),
    () => qi.bulkUpdate({ tableName: 'notes', schema }, { body: 'x' }, {}, {}),
    () => qi.bulkDelete({ tableName: 'notes', schema }, {}, {}),
    () => qi.increment(null, 'notes', {}, { id: 1 }, {}, {}),
    () => qi.insert(null, 'notes', { body: 'x' }, {}),
  ];
  const { sql } = await capture(async () => {
    for (const call of calls) await t.throwsAsync(call, { instanceOf: MissingTenantError });
  });
  t.deepEqual(sql, []);
});

test.serial('a model without tenantKey defined on a tenant table is scoped by the table, as root and as include', async (t) => {
  const { sequelize, Purchase, capture } = t.context;
  const { DataTypes } = await import('sequelize');
  const ProductView = sequelize.define(
    'ProductView',
    { id: { type: DataTypes.INTEGER, primaryKey: true }, store_id: DataTypes.INTEGER, name: DataTypes.STRING },
    { tableName: 'products', timestamps: false },
  );
  Purchase.belongsTo(ProductView, { foreignKey: 'product_id', constraints: false });
  try {
    const roots = await withTenant(1, () => ProductView.findAll());
    t.deepEqual([...new Set(roots.map((r) => r.get('store_id')))], [1]);
    const { result, sql } = await capture(() =>
      withTenant(2, () => Purchase.findAll({ include: [{ model: ProductView, required: true }] })),
    );
    const seen = (result as unknown as Array<{ get(k: string): unknown; ProductView: { get(k: string): unknown } }>).map((u) => [
      u.get('store_id'),
      u.ProductView.get('store_id'),
    ]);
    t.true(seen.length > 0);
    t.deepEqual(
      seen.filter(([a, b]) => a !== 2 || b !== 2),
      [],
    );
    t.regex(sql[0] as string, /"ProductView"."store_id" = 2/);
  } finally {
    sequelize.modelManager.removeModel(ProductView);
    delete (Purchase as unknown as { associations: Record<string, unknown> }).associations.ProductView;
  }
});

test.serial('quoteIdentifiers: false — a name PostgreSQL reads past its whitespace and case still names the tenant table', async (t) => {
  const { sequelize, rows } = t.context;
  const options = (sequelize as unknown as { options: { quoteIdentifiers?: boolean } }).options;
  const qi: QI = sequelize.getQueryInterface();
  const before = options.quoteIdentifiers;
  options.quoteIdentifiers = false; // Sequelize now sends table names unquoted: PostgreSQL folds and trims them
  try {
    const read = await withTenant(1, () => qi.select(null, ' products', { where: {} }));
    t.deepEqual([...new Set((read as Array<{ store_id: number }>).map((r) => r.store_id))], [1]);
    await withTenant(1, () => qi.bulkUpdate('products ', { name: 'renamed' }, { id: 2 }, {}));
    await withTenant(1, () => qi.bulkDelete('\tPRODUCTS', { id: 1 }, {}));
  } finally {
    options.quoteIdentifiers = before;
  }
  t.deepEqual(
    (await rows('products', 'store_id, id')).map((r) => [r.store_id, r.id, r.name]),
    [
      [1, 2, 'renamed'],
      [2, 1, 'apple-B'],
      [2, 2, 'pear-B'],
      [2, 3, 'plum-B'],
    ],
  );
});
