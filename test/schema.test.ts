// The PostgreSQL side of the schema layer: tenant-aware foreign keys and unique keys on sync, the
// checks Citus would fail, the migration helpers' no-op path. (Citus itself: citus.test.ts.)
import anyTest, { type TestFn } from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import {
  addTenantForeignKey,
  createDistributedTable,
  createReferenceTable,
  MultitenantError,
  multitenant,
  routerOnly,
  undistributeTable,
  withTenant,
} from '../src/index';
import { createTestDatabase, onCitus, onEmbedded, type TestDatabase } from './helpers/db';
import { defineSchemaModels, type SchemaModels } from './helpers/schema-models';

interface Ctx {
  db: TestDatabase;
  sequelize: Sequelize;
  models: SchemaModels;
  notices: string[];
  sql: string[];
}
const test = anyTest as TestFn<Ctx>;
// Plain PostgreSQL only: on Citus (npm run test:citus) these expectations are citus.test.ts's.
const serial = onCitus ? test.skip : test.serial;

if (!onCitus)
  test.before(async (t) => {
    const db = await createTestDatabase();
    const notices: string[] = [];
    const sql: string[] = [];
    const sequelize = new Sequelize(db.url, { logging: (s) => sql.push(s), pool: { max: db.maxConnections } });
    multitenant(sequelize, { notice: (m) => notices.push(m) });
    const models = defineSchemaModels(sequelize);
    await sequelize.sync();
    t.context = { db, sequelize, models, notices, sql };
  });
if (!onCitus)
  test.after.always(async (t) => {
    await t.context?.sequelize.close();
    await t.context?.db.drop();
  });

async function constraints(sequelize: Sequelize, table: string): Promise<string[]> {
  const [rows] = await sequelize.query(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = '${table}'::regclass AND contype IN ('f', 'u', 'p') ORDER BY 1`,
  );
  return (rows as Array<{ def: string }>).map((r) => r.def);
}

serial('sync creates (store_id, product_id) → products (store_id, id) instead of a single-column key', async (t) => {
  const defs = await constraints(t.context.sequelize, 'purchases');
  t.true(defs.includes('FOREIGN KEY (store_id, product_id) REFERENCES products(store_id, id) ON DELETE CASCADE'), defs.join('\n'));
  t.false(defs.some((d) => /FOREIGN KEY \(product_id\)/.test(d)));
});

serial('foreign keys to the tenant table and to global tables stay single-column', async (t) => {
  const defs = await constraints(t.context.sequelize, 'products');
  t.true(
    defs.some((d) => /^FOREIGN KEY \(store_id\) REFERENCES stores\(id\)/.test(d)),
    defs.join('\n'),
  );
  t.true(
    defs.some((d) => /^FOREIGN KEY \(country_code\) REFERENCES countries\(code\)/.test(d)),
    defs.join('\n'),
  );
});

serial('belongsToMany: the through table gets tenant foreign keys to both sides and a key with the tenant', async (t) => {
  const defs = await constraints(t.context.sequelize, 'product_tags');
  t.true(defs.includes('FOREIGN KEY (store_id, product_id) REFERENCES products(store_id, id) ON DELETE CASCADE'), defs.join('\n'));
  t.true(defs.includes('FOREIGN KEY (store_id, tag_id) REFERENCES tags(store_id, id) ON DELETE CASCADE'), defs.join('\n'));
  // Sequelize makes (product_id, tag_id) the key of a through model without one: the tenant joins it.
  t.true(defs.includes('PRIMARY KEY (store_id, product_id, tag_id)'), defs.join('\n'));
  t.false(defs.some((d) => /^(UNIQUE|PRIMARY KEY) \(product_id, tag_id\)$/.test(d)));
});

serial('belongsToMany through a model with its own key: Sequelize’s UNIQUE (fk, otherKey) gets the tenant column', async (t) => {
  const defs = await constraints(t.context.sequelize, 'product_labels');
  t.true(defs.includes('UNIQUE (store_id, product_id, label_id)'), defs.join('\n'));
  t.false(defs.some((d) => /^UNIQUE \(product_id, label_id\)$/.test(d)));
});

serial('a parent whose key lacks the tenant column gets UNIQUE (store_id, id); nullable-key defaults become NO ACTION', async (t) => {
  t.true((await constraints(t.context.sequelize, 'invoices')).includes('UNIQUE (store_id, id)'));
  const defs = await constraints(t.context.sequelize, 'invoice_lines');
  t.true(defs.includes('FOREIGN KEY (store_id, invoice_id) REFERENCES invoices(store_id, id)'), defs.join('\n'));
});

serial('the database itself now refuses a row that points at another tenant’s row', async (t) => {
  const { sequelize } = t.context;
  await sequelize.query(`INSERT INTO stores (id, name) VALUES (1, 'A'), (2, 'B')`);
  await sequelize.query(`INSERT INTO products (id, store_id, name) VALUES (1, 1, 'a'), (2, 2, 'b')`);
  await t.throwsAsync(() => sequelize.query(`INSERT INTO purchases (store_id, product_id, qty) VALUES (1, 2, 1)`), {
    message: /foreign key/,
  });
  await sequelize.query(`INSERT INTO purchases (store_id, product_id, qty) VALUES (2, 2, 1)`);
  // ON DELETE CASCADE kept: deleting the product removes its purchases (in the same tenant only).
  await withTenant(2, () => t.context.models.Product.destroy({ where: { id: 2 } }));
  const [rows] = await sequelize.query('SELECT count(*)::int AS n FROM purchases');
  t.deepEqual(rows, [{ n: 0 }]);
});

serial('a second sync is a no-op', async (t) => {
  const before = await constraints(t.context.sequelize, 'purchases');
  await t.context.sequelize.sync();
  t.deepEqual(await constraints(t.context.sequelize, 'purchases'), before);
});

serial('plain PostgreSQL: distribution is skipped with one notice', (t) => {
  t.is(t.context.notices.filter((n) => /no citus extension in this database: tables are created, not distributed/.test(n)).length, 1);
});

serial('ON DELETE SET NULL written on a tenant foreign key is refused before anything is created', async (t) => {
  const { sequelize } = t.context;
  const key = { type: DataTypes.BIGINT, primaryKey: true };
  const A = sequelize.define('A', { id: key, store_id: key }, { tableName: 'a_parent', tenantKey: 'store_id', timestamps: false });
  const B = sequelize.define(
    'B',
    { id: key, store_id: key, a_id: DataTypes.BIGINT },
    { tableName: 'b_child', tenantKey: 'store_id', timestamps: false },
  );
  B.belongsTo(A, { foreignKey: 'a_id', onDelete: 'SET NULL' });
  await A.sync();
  const err = await t.throwsAsync(() => B.sync(), { instanceOf: MultitenantError });
  t.regex(err?.message ?? '', /onDelete 'SET NULL' on B → A .*Citus rejects ON DELETE SET NULL there\. Use CASCADE, RESTRICT or NO ACTION/);
  const [rows] = await sequelize.query(`SELECT to_regclass('b_child') AS t`);
  t.deepEqual(rows, [{ t: null }]);
  const manager = (sequelize as unknown as { modelManager: { removeModel(m: unknown): void } }).modelManager;
  manager.removeModel(B);
  manager.removeModel(A);
});

serial('define-time checks: keys Citus would reject and INTEGER auto-increment keys are warned about', (t) => {
  const notices: string[] = [];
  const s = new Sequelize('postgres://localhost/none', { logging: false });
  multitenant(s, { notice: (m) => notices.push(m) });
  s.define(
    'Loose',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      store_id: DataTypes.BIGINT,
      sku: { type: DataTypes.STRING, unique: true },
    },
    { tenantKey: 'store_id' },
  );
  s.define(
    'Tight',
    { id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true }, store_id: { type: DataTypes.BIGINT, primaryKey: true } },
    { tenantKey: 'store_id' },
  );
  t.is(notices.length, 3, notices.join('\n'));
  t.regex(notices[0] as string, /Loose: primary key \(id\) does not include the tenant column store_id.*\(store_id, id\)/);
  t.regex(notices[1] as string, /Loose: unique key \(sku\) does not include the tenant column store_id/);
  t.regex(notices[2] as string, /Loose.id is an INTEGER auto-increment key: use BIGINT/);
});

serial('migration helpers: a no-op with a notice on plain PostgreSQL; the tenant foreign key works', async (t) => {
  const { sequelize } = t.context;
  const qi = sequelize.getQueryInterface();
  const notices: string[] = [];
  const notice = (m: string) => notices.push(m);
  t.false(await createDistributedTable(qi, 'products', 'store_id', { colocateWith: 'stores', notice }));
  t.false(await createReferenceTable(qi, 'countries', { notice }));
  t.false(await undistributeTable(sequelize, 'products', { notice }));
  t.deepEqual(notices, [
    'createDistributedTable(products): no citus extension in this database, nothing to do (plain PostgreSQL)',
    'createReferenceTable(countries): no citus extension in this database, nothing to do (plain PostgreSQL)',
    'undistributeTable(products): no citus extension in this database, nothing to do (plain PostgreSQL)',
  ]);
  await sequelize.query('CREATE TABLE reviews (id bigint, store_id bigint, product_id bigint, PRIMARY KEY (store_id, id))');
  const options = {
    tenantColumn: 'store_id',
    columns: ['product_id'],
    references: { table: 'products', columns: ['id'] },
    onDelete: 'CASCADE' as const,
  };
  t.true(await addTenantForeignKey(qi, 'reviews', options));
  t.false(await addTenantForeignKey(qi, 'reviews', options));
  t.true(
    (await constraints(sequelize, 'reviews')).includes(
      'FOREIGN KEY (store_id, product_id) REFERENCES products(store_id, id) ON DELETE CASCADE',
    ),
  );
  const setNull = await t.throwsAsync(() => addTenantForeignKey(qi, 'reviews', { ...options, name: 'x', onDelete: 'SET NULL' as never }), {
    instanceOf: MultitenantError,
  });
  t.regex(
    setNull?.message ?? '',
    /^reviews\.addTenantForeignKey: onDelete SET NULL is not allowed .* it would clear or change the tenant column too; nothing was changed/,
  );
  // the same key under another name is the same key: not added twice
  t.false(await addTenantForeignKey(qi, 'reviews', { ...options, name: 'reviews_other_name_fkey' }));
  // a parent without the tenant column, a missing table: refused before any statement
  await sequelize.query('CREATE TABLE currencies (id bigint PRIMARY KEY)');
  const noTenant = await t.throwsAsync(
    () => addTenantForeignKey(qi, 'reviews', { ...options, references: { table: 'currencies', columns: ['id'] } }),
    { instanceOf: MultitenantError },
  );
  t.regex(noTenant?.message ?? '', /table currencies has no column store_id: the parent must be a tenant table/);
  await t.throwsAsync(() => addTenantForeignKey(qi, 'nowhere', options), {
    instanceOf: MultitenantError,
    message: /table nowhere does not exist/,
  });
  // a constraint of that name holding another key: refused, not skipped
  await sequelize.query('CREATE TABLE notes (id bigint, store_id bigint, product_id bigint, PRIMARY KEY (store_id, id))');
  await sequelize.query('ALTER TABLE notes ADD CONSTRAINT notes_store_id_product_id_fkey CHECK (id > 0)');
  await t.throwsAsync(() => addTenantForeignKey(qi, 'notes', options), {
    instanceOf: MultitenantError,
    message: /a constraint named "notes_store_id_product_id_fkey" already holds CHECK/,
  });
});

serial('addTenantForeignKey on a long multibyte table name: two keys, two constraints, both enforced', async (t) => {
  const { sequelize } = t.context;
  const qi = sequelize.getQueryInterface();
  // 30 characters, 60 bytes: both default names pass PostgreSQL's 63 bytes and must not truncate to one
  const table = 'строки_заказов_покупателей_мск';
  await sequelize.query(
    `CREATE TABLE "${table}" (id bigint, store_id bigint, product_id bigint, other_product_id bigint, PRIMARY KEY (store_id, id))`,
  );
  const base = { tenantColumn: 'store_id', references: { table: 'products', columns: ['id'] } };
  t.true(await addTenantForeignKey(qi, table, { ...base, columns: ['product_id'] }));
  t.true(await addTenantForeignKey(qi, table, { ...base, columns: ['other_product_id'] }));
  const [names] = await sequelize.query(
    `SELECT conname, octet_length(conname::text) AS bytes FROM pg_constraint WHERE conrelid = '"${table}"'::regclass AND contype = 'f' ORDER BY 1`,
  );
  t.is(names.length, 2);
  t.true((names as Array<{ bytes: number }>).every((n) => n.bytes <= 63));
  const [[product]] = (await sequelize.query('SELECT id FROM products WHERE store_id = 1 LIMIT 1')) as [Array<{ id: string }>, unknown];
  await t.throwsAsync(() => sequelize.query(`INSERT INTO "${table}" VALUES (1, 2, NULL, ${product?.id})`), {
    message: /violates foreign key constraint/,
  });
});

serial('routerOnly on plain PostgreSQL: a notice, and queries run', async (t) => {
  const notices: string[] = [];
  routerOnly(t.context.sequelize, { notice: (m) => notices.push(m) });
  t.is(await withTenant(1, () => t.context.models.Product.count()), 1);
  t.deepEqual(notices, ['routerOnly: no citus extension in this database, nothing to check (plain PostgreSQL)']);
});

// a second Sequelize needs a second connection: skipped on the embedded PGlite (one connection)
(onEmbedded() ? test.skip : serial)(
  'plain PostgreSQL is quiet by default: the skipped Citus steps print nothing without a notice handler',
  async (t) => {
    const { db } = t.context;
    const printed: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void printed.push(args);
    const quiet = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    try {
      multitenant(quiet); // no notice option
      quiet.define(
        'Quiet',
        { id: { type: DataTypes.BIGINT, primaryKey: true } },
        { tableName: 'quiet_stores', tenantKey: 'id', timestamps: false },
      );
      await quiet.sync();
      await createDistributedTable(quiet, 'quiet_stores', 'id');
    } finally {
      console.warn = warn;
      await quiet.query('DROP TABLE IF EXISTS quiet_stores');
      await quiet.close();
    }
    t.deepEqual(printed, []);
  },
);
