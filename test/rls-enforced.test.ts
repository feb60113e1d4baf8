// Under rls: true, row-level security is never silently off: a statement that names a tenant table
// which has no policy (created by plain Sequelize, a migration, a sync the library did not see) is
// refused before it is sent — ORM queries and raw SQL alike, under a tenant and with none; inside
// withoutTenant (which sees every row anyway) it runs. A table is checked once per instance, at first
// use; once it has its policy, statements on it run.
import anyTest, { type TestFn } from 'ava';
import { QueryTypes, Sequelize } from 'sequelize';
import { enableRowLevelSecurity, MultitenantError, multitenant, withoutTenant, withTenant } from '../src/index';
import { createRlsDatabase, defineStoreModels, type RlsDatabase } from './helpers/rls';

const test = anyTest as TestFn<{ db: RlsDatabase }>;
test.before(async (t) => {
  t.context = { db: await createRlsDatabase() };
});
test.after.always(async (t) => t.context?.db?.drop());

test.serial('a tenant table without its policy is refused at first use, until it has one', async (t) => {
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
  multitenant(s, { notice: false, rls: true });
  const { Product } = defineStoreModels(s);
  try {
    const refusal = async (what: string, run: () => Promise<unknown>) => {
      sent.length = 0;
      const err = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      t.true(err instanceof MultitenantError, `${what}: refused (got ${String(err)})`);
      t.regex(String((err as Error).message), /products has no row-level security/, what);
      t.false(
        sent.some((sql) => /FROM "?products"?/.test(sql)),
        `${what}: not sent`,
      );
    };
    await refusal('findAll under a tenant', () => withTenant(1, () => Product.findAll()));
    await refusal('raw SELECT under a tenant', () => withTenant(1, () => s.query('SELECT * FROM products', { type: QueryTypes.SELECT })));
    await refusal('raw SELECT with no tenant', () => s.query('select name from Products', { type: QueryTypes.SELECT }));
    await refusal('a DO block', () =>
      withTenant(1, () => s.query(`DO $$ BEGIN PERFORM 1 FROM "products"; END $$`, { type: QueryTypes.RAW })),
    );
    await refusal('an insert', () => withTenant(1, () => Product.create({ id: 9, name: 'x' })));
    // a statement naming the table only in a string (a catalog query) is not about its rows
    t.deepEqual(
      await withTenant(1, () =>
        s.query(`SELECT relname FROM pg_class WHERE relname = 'products' AND relnamespace = to_regnamespace(current_schema())`, {
          type: QueryTypes.SELECT,
        }),
      ),
      [{ relname: 'products' }],
    );
    // withoutTenant sees every row with a policy too: it runs
    t.is((await withoutTenant(() => Product.findAll())).length, 2);

    await withoutTenant(() => enableRowLevelSecurity(s, 'products', { column: 'store_id', notice: false }));
    t.deepEqual(
      (await withTenant(1, () => Product.findAll())).map((p) => p.get('name')),
      ['p1'],
    );
    t.deepEqual(await withTenant(2, () => s.query('SELECT name FROM products', { type: QueryTypes.SELECT })), [{ name: 'p2' }]);
  } finally {
    await s.close();
  }
});
