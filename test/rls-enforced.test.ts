// Under rls: true, row-level security is never silently off: while a tenant table exists without its
// policy (created by plain Sequelize, a migration, a sync the library did not see), every statement
// about rows is refused before it is sent — ORM queries and raw SQL alike, naming the table or not (a
// view, a Unicode escape, a function could reach it), under a tenant and with none; inside withoutTenant
// (which sees every row anyway), DDL and the library's own sync run. Once the tables hold their policy,
// statements run.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { enableRowLevelSecurity, MultitenantError, multitenant, withoutTenant, withTenant } from '../src/index';
import { createRlsDatabase, defineStoreModels, type RlsDatabase, reachesTheDatabase } from './helpers/rls';

const test = anyTest as TestFn<{ db: RlsDatabase }>;
test.before(async (t) => {
  t.context = { db: await createRlsDatabase() };
});
test.after.always(async (t) => t.context?.db?.drop());

test.serial('while a tenant table lacks its policy, statements about rows are refused; DDL, withoutTenant and sync run', async (t) => {
  const { db } = t.context;
  // the tables, created by a Sequelize instance without the library: no policy
  const plain = new Sequelize(db.url, { logging: false, ...db.connectOptions() });
  defineStoreModels(plain);
  await plain.sync();
  await plain.query(`INSERT INTO stores (id, name) VALUES (1, 'a'), (2, 'b')`);
  await plain.query(`INSERT INTO products (store_id, id, name) VALUES (1, 1, 'p1'), (2, 1, 'p2')`);
  await plain.close();

  const sent: string[] = [];
  const s = new Sequelize(db.url, { logging: (sql) => sent.push(sql), ...db.connectOptions() });
  multitenant(s, { ...reachesTheDatabase, notice: false, rls: true });
  const { Product } = defineStoreModels(s);
  try {
    const refusal = async (what: string, run: () => Promise<unknown>, sql: RegExp) => {
      sent.length = 0;
      const err = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      t.true(err instanceof MultitenantError, `${what}: refused (got ${String(err)})`);
      t.regex(
        String((err as Error).message),
        /^Store\.rls: tables without row-level security \(rls: true\): stores \(missing: .*\); products \(missing: ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY, the policy sequelize_multitenant_isolation, the TRUNCATE trigger sequelize_multitenant_no_truncate\)\. .* was not sent/,
        what,
      );
      t.false(
        sent.some((x) => sql.test(x)),
        `${what}: not sent`,
      );
    };
    await refusal('findAll under a tenant', () => withTenant(1, () => Product.findAll()), /FROM "products"/);
    await refusal(
      'raw SELECT under a tenant',
      () => withTenant(1, () => s.query('SELECT * FROM products', { type: QueryTypes.SELECT })),
      /products/,
    );
    await refusal('raw SELECT with no tenant', () => s.query('select name from Products', { type: QueryTypes.SELECT }), /Products/);
    await refusal(
      'a DO block',
      () => withTenant(1, () => s.query(`DO $$ BEGIN PERFORM 1 FROM "products"; END $$`, { type: QueryTypes.RAW })),
      /DO/,
    );
    await refusal('an insert', () => withTenant(1, () => Product.create({ id: 9, name: 'x' })), /INSERT/);
    await refusal(
      'a Unicode-escaped name',
      () => withTenant(1, () => s.query(`SELECT store_id FROM U&"pr\\006Fducts"`, { type: QueryTypes.SELECT })),
      /U&/,
    );
    // DDL is not about rows: a view can be made — and reading through it is refused like the table
    await withTenant(1, () => s.query('CREATE VIEW products_view AS SELECT * FROM products'));
    await refusal(
      'a view over the table',
      () => withTenant(1, () => s.query('SELECT store_id FROM products_view', { type: QueryTypes.SELECT })),
      /products_view/,
    );
    await refusal(
      'a statement that names no table at all',
      () => withTenant(1, () => s.query('SELECT 1 AS one', { type: QueryTypes.SELECT })),
      /SELECT 1/,
    );
    // withoutTenant sees every row with a policy too: it runs
    t.is((await withoutTenant(() => Product.findAll())).length, 2);

    // the fix, as a migration would run it: each table gets its policy, then statements run
    await enableRowLevelSecurity(s, 'stores', { column: 'id', notice: false });
    await enableRowLevelSecurity(s, 'products', { column: 'store_id', notice: false });
    t.deepEqual(
      (await withTenant(1, () => Product.findAll())).map((p) => p.get('name')),
      ['p1'],
    );
    t.deepEqual(await withTenant(2, () => s.query('SELECT name FROM products_view', { type: QueryTypes.SELECT })), [{ name: 'p2' }]);
    t.deepEqual(await withTenant(2, () => s.query(`SELECT name FROM U&"pr\\006Fducts"`, { type: QueryTypes.SELECT })), [{ name: 'p2' }]);

    // a model added later: its sync makes its table with the policy (the sync's own reads are not refused)
    const Extra = s.define(
      'Extra',
      { store_id: { type: DataTypes.BIGINT, primaryKey: true }, id: { type: DataTypes.BIGINT, primaryKey: true } },
      {
        tableName: 'extras',
        tenantKey: 'store_id',
        timestamps: false,
      },
    );
    await Extra.sync();
    t.deepEqual(await withTenant(1, () => Extra.findAll()), []);
  } finally {
    await s.close();
  }
});

test.serial(
  'a table that takes a tenant table’s place (a temporary table of its name) is caught on every connection: the next statement about rows is refused',
  async (t) => {
    const { db } = t.context;
    const s = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
    multitenant(s, { ...reachesTheDatabase, notice: false, rls: true });
    const { Product } = defineStoreModels(s);
    try {
      await s.sync({ force: true });
      await withoutTenant(() => s.query(`INSERT INTO stores (id, name) VALUES (1, 'a'), (2, 'b')`));
      await withTenant(2, () => Product.create({ id: 1, name: 'p2' }));
      // tenant 1, on the one pooled connection: a temporary table named products (found first by unqualified names)
      await withTenant(1, () =>
        s.query('CREATE TEMP TABLE products (store_id bigint, id bigint, name text, "createdAt" timestamptz, "updatedAt" timestamptz)'),
      );
      const err = await t.throwsAsync(() => withTenant(2, () => Product.create({ id: 2, name: 'p2-secret' })), {
        instanceOf: MultitenantError,
      });
      t.regex(err?.message ?? '', /products \(missing: ENABLE ROW LEVEL SECURITY/);
      await t.throwsAsync(() => withTenant(1, () => s.query('SELECT * FROM products')), { instanceOf: MultitenantError });
      // nothing of tenant 2 went into the temporary table; once it is gone, statements run again
      await withoutTenant(() => s.query('DROP TABLE pg_temp.products'));
      t.deepEqual(
        (await withTenant(2, () => Product.findAll({ order: [['id', 'ASC']] }))).map((p) => p.get('name')),
        ['p2'],
      );
    } finally {
      await s.close();
    }
  },
);
