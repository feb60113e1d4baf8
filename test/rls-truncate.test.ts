// TRUNCATE under `rls: true`, refused by the database itself. Row-level security does not apply to
// TRUNCATE: a DO block that builds the statement at run time, or a function created earlier, run under a
// tenant would empty the table for every tenant — and no reading of the statement's text (the library's
// first guard, kept) can see either. So each tenant table (each partition and inheritance child too)
// carries a BEFORE TRUNCATE statement trigger that raises unless the bypass setting is on (withoutTenant).
// Connected as a role that owns the tables and is neither a superuser nor BYPASSRLS; on PostgreSQL, on the
// embedded PGlite and on Citus (where the trigger lives on the tables the coordinator holds, made with
// citus.enable_unsafe_triggers on for that statement only).
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize, type Transaction } from 'sequelize';
import { inspect } from '../src/doctor/inspect';
import {
  createDistributedTable,
  disableRowLevelSecurity,
  enableRowLevelSecurity,
  MultitenantError,
  multitenant,
  UnscopedQueryError,
  withoutTenant,
  withTenant,
} from '../src/index';
import { onCitus, onEmbedded } from './helpers/db';
import { createRlsDatabase, defineStoreModels, type RlsDatabase, reachesTheDatabase } from './helpers/rls';

interface Ctx {
  db: RlsDatabase;
  sequelize: Sequelize;
  Store: ReturnType<typeof defineStoreModels>['Store'];
  Product: ReturnType<typeof defineStoreModels>['Product'];
  schema: string;
}
const test = anyTest as TestFn<Ctx>;

const TRIGGER = 'sequelize_multitenant_no_truncate';
const FUNCTION = 'sequelize_multitenant_refuse_truncate';

test.before(async (t) => {
  const db = await createRlsDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
  multitenant(sequelize, { ...reachesTheDatabase, rls: true, notice: false });
  const models = defineStoreModels(sequelize);
  await sequelize.sync();
  const [row] = (await sequelize.query('SELECT current_schema() AS schema', { type: QueryTypes.SELECT })) as Array<{ schema: string }>;
  t.context = { db, sequelize, ...models, schema: row?.schema ?? 'public' };
});

test.after.always(async (t) => {
  await t.context?.sequelize?.close();
  await t.context?.db?.drop();
});

const q = (s: Sequelize, sql: string, transaction?: Transaction) => s.query(sql, { type: QueryTypes.SELECT, transaction });
const count = async (s: Sequelize, table: string): Promise<number> =>
  Number(((await withoutTenant(() => q(s, `SELECT count(*)::int AS n FROM ${table}`))) as Array<{ n: number }>)[0]?.n);
/** Every tenant's products: store → how many. */
const perStore = async (s: Sequelize): Promise<Record<string, number>> => {
  const rows = (await withoutTenant(() =>
    q(s, 'SELECT store_id::int AS s, count(*)::int AS n FROM products GROUP BY 1 ORDER BY 1'),
  )) as Array<{ s: number; n: number }>;
  return Object.fromEntries(rows.map((r) => [String(r.s), r.n]));
};
const SEEDED = { '1': 2, '2': 2, '3': 2 };

async function seed(t: { context: Ctx }): Promise<void> {
  const { sequelize, Store, Product } = t.context;
  await withoutTenant(async () => {
    await sequelize.query('DELETE FROM products');
    await sequelize.query('DELETE FROM stores');
    await Store.bulkCreate([1, 2, 3].map((id) => ({ id, name: `s${id}` })));
    await Product.bulkCreate([1, 2, 3].flatMap((s) => [1, 2].map((id) => ({ store_id: s, id, name: `p${id}-of-${s}` }))));
  });
}

/** The error PostgreSQL raised (not the library's text guard): SQLSTATE 42501, naming the table. */
async function refusedByDatabase(t: ExecutionContext<Ctx>, run: () => Promise<unknown>, table: string, what: string) {
  const err = await t.throwsAsync(run, undefined, what);
  t.false(err instanceof MultitenantError, `${what}: refused by the database, not by the library (${err?.message})`);
  const original = (err as { original?: { code?: string; message?: string; hint?: string } } | undefined)?.original;
  t.is(original?.code, '42501', `${what}: insufficient_privilege (${err?.message})`);
  t.regex(
    original?.message ?? '',
    new RegExp(`^TRUNCATE of ${t.context.schema}\\.${table} refused \\(sequelize-multitenant, rls: true\\)`),
    what,
  );
  t.regex(original?.hint ?? '', /inside withoutTenant/, what);
}

/** The library's triggers on a table (pg_trigger), and its functions in the test's schema (pg_proc). */
async function triggersOn(s: Sequelize, table: string): Promise<number> {
  // a catalog read: inside withoutTenant (with a trigger missing, the instance refuses statements about rows elsewhere)
  const rows = (await withoutTenant(() =>
    q(s, `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = to_regclass('${table}') AND tgname = '${TRIGGER}'`),
  )) as Array<{ n: number }>;
  return Number(rows[0]?.n);
}
async function functions(s: Sequelize): Promise<number> {
  const rows = (await q(
    s,
    `SELECT count(*)::int AS n FROM pg_proc WHERE proname = '${FUNCTION}' AND pronamespace = to_regnamespace(current_schema())`,
  )) as Array<{ n: number }>;
  return Number(rows[0]?.n);
}

/** DROP TRIGGER as an application's migration would send it (Citus: with citus.enable_unsafe_triggers, in a transaction). */
async function dropTrigger(s: Sequelize, table: string): Promise<void> {
  await withoutTenant(() =>
    s.transaction(async (transaction) => {
      if (onCitus) await s.query('SET LOCAL citus.enable_unsafe_triggers = on', { transaction });
      await s.query(`DROP TRIGGER ${TRIGGER} ON ${table}`, { transaction });
    }),
  );
}

test.serial(
  'sync made one trigger per tenant table and one function; a second sync and enableRowLevelSecurity change nothing',
  async (t) => {
    const { sequelize: s } = t.context;
    t.is(await triggersOn(s, 'stores'), 1);
    t.is(await triggersOn(s, 'products'), 1);
    t.is(await functions(s), 1);
    await s.sync();
    t.false(await enableRowLevelSecurity(s, 'products', { column: 'store_id' }), 'nothing left to change');
    t.false(await enableRowLevelSecurity(s, 'products', { column: 'store_id' }));
    t.is(await triggersOn(s, 'products'), 1, 'enableRowLevelSecurity twice: still one trigger');
    t.is(await triggersOn(s, 'stores'), 1);
    t.is(await functions(s), 1);
  },
);

test.serial(
  'a DO block that builds TRUNCATE at run time, under a tenant and with none: PostgreSQL refuses it, every row stays',
  async (t) => {
    await seed(t);
    const { sequelize: s } = t.context;
    const sql = `DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE products'; END $$`;
    await refusedByDatabase(t, () => withTenant(1, () => s.query(sql)), 'products', 'under tenant 1');
    await refusedByDatabase(t, () => s.query(sql), 'products', 'with no tenant');
    await refusedByDatabase(
      t,
      () => withTenant(2, () => s.transaction((transaction) => s.query(sql, { transaction }))),
      'products',
      'in a transaction',
    );
    // the tenant table itself, and several tables at once
    await refusedByDatabase(
      t,
      () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE stores CASCADE'; END $$`)),
      'stores',
      'stores CASCADE',
    );
    t.deepEqual(await perStore(s), SEEDED, "every tenant's rows are still there");
    t.is(await count(s, 'stores'), 3);
    // the text guard still refuses what it can read, before anything is sent
    await t.throwsAsync(() => withTenant(1, () => s.query('TRUNCATE products')), { instanceOf: UnscopedQueryError });
  },
);

test.serial(
  'a function created earlier that truncates: refused under a tenant and with none; inside withoutTenant it empties the table',
  async (t) => {
    await seed(t);
    const { sequelize: s, Product } = t.context;
    await withoutTenant(() =>
      s.query(`CREATE FUNCTION wipe_products() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN TRUNCATE products; END $f$`),
    );
    try {
      await refusedByDatabase(t, () => withTenant(1, () => q(s, 'SELECT wipe_products()')), 'products', 'under tenant 1');
      await refusedByDatabase(t, () => withTenant([1, 2], () => q(s, 'SELECT wipe_products()')), 'products', 'under tenants 1, 2');
      await refusedByDatabase(t, () => q(s, 'SELECT wipe_products()'), 'products', 'with no tenant');
      t.deepEqual(await perStore(s), SEEDED, "every tenant's rows are still there");
      // the bypass: withoutTenant sets sequelize_multitenant.bypass = on, the trigger lets it through
      await withoutTenant(() => q(s, 'SELECT wipe_products()'));
      t.is(await count(s, 'products'), 0, 'emptied inside withoutTenant');
      await seed(t);
      await withoutTenant(() => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE products'; END $$`));
      t.is(await count(s, 'products'), 0, 'a DO block inside withoutTenant');
      await seed(t);
      await withoutTenant(() => s.query('TRUNCATE products'));
      t.is(await count(s, 'products'), 0, 'a plain TRUNCATE inside withoutTenant');
      await seed(t);
      await withoutTenant(() => s.transaction((transaction) => Product.truncate({ transaction })));
      t.is(await count(s, 'products'), 0, 'Model.truncate() in a transaction inside withoutTenant');
    } finally {
      await withoutTenant(() => s.query('DROP FUNCTION wipe_products()'));
    }
  },
);

test.serial('TRUNCATE ... CASCADE from a table without the trigger reaches a tenant table: refused by that table, rows kept', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  // a global table (a reference table on Citus) that a tenant table made by a migration refers to
  await withoutTenant(async () => {
    await s.query('CREATE TABLE regions (id int PRIMARY KEY)');
    if (onCitus) await s.query(`SELECT create_reference_table('regions')`);
    await s.query(
      'CREATE TABLE notes (store_id bigint NOT NULL, id bigint NOT NULL, region_id int REFERENCES regions (id), PRIMARY KEY (store_id, id))',
    );
  });
  try {
    t.true(await enableRowLevelSecurity(s, 'notes', { column: 'store_id' }));
    // Citus refuses to distribute a table that has triggers: the library's is dropped and made again around it
    if (onCitus) t.true(await createDistributedTable(s, 'notes', 'store_id', { colocateWith: 'stores', notice: false }));
    t.is(await triggersOn(s, 'notes'), 1);
    await withoutTenant(async () => {
      await s.query('INSERT INTO regions VALUES (1)');
      await s.query('INSERT INTO notes VALUES (1, 1, 1), (2, 1, 1)');
    });
    // the text guard refuses a CASCADE it reads; a DO block gets past it — and the database refuses
    await t.throwsAsync(() => withTenant(1, () => s.query('TRUNCATE regions CASCADE')), { instanceOf: UnscopedQueryError });
    await refusedByDatabase(
      t,
      () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE regions CASCADE'; END $$`)),
      'notes',
      'regions CASCADE',
    );
    await refusedByDatabase(t, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE regions CASCADE'; END $$`), 'notes', 'with no tenant');
    t.is(await count(s, 'notes'), 2, "both tenants' notes are still there");
    t.is(await count(s, 'regions'), 1);

    // disableRowLevelSecurity removes the trigger: the same DO block then goes through (notes is no model:
    // nothing else refuses it); the function stays while other tables use it
    t.true(await disableRowLevelSecurity(s, 'notes'));
    t.is(await triggersOn(s, 'notes'), 0);
    t.is(await functions(s), 1, 'stores and products still use the function');
    t.false(await disableRowLevelSecurity(s, 'notes'));
    await withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE regions CASCADE'; END $$`));
    t.is(await count(s, 'notes'), 0, 'without the trigger, a DO block under a tenant empties every tenant');
    t.deepEqual(await perStore(s), SEEDED, 'products were not reached');
  } finally {
    await withoutTenant(async () => {
      await s.query('DROP TABLE IF EXISTS notes');
      await s.query('DROP TABLE IF EXISTS regions');
    });
  }
});

test.serial('partitions (and, on PostgreSQL, inheritance children) carry the trigger: a DO block truncating one is refused', async (t) => {
  const { sequelize: s } = t.context;
  await withoutTenant(async () => {
    await s.query('CREATE TABLE events (store_id bigint NOT NULL, id bigint NOT NULL) PARTITION BY LIST (store_id)');
    await s.query('CREATE TABLE events_p1 PARTITION OF events FOR VALUES IN (1)');
    await s.query('CREATE TABLE events_p2 PARTITION OF events FOR VALUES IN (2, 3)');
    if (!onCitus) {
      // Citus distributes no inheritance tree
      await s.query('CREATE TABLE logs (store_id bigint NOT NULL, id bigint NOT NULL)');
      await s.query('CREATE TABLE logs_old () INHERITS (logs)');
    }
  });
  try {
    t.true(await enableRowLevelSecurity(s, 'events', { column: 'store_id' }));
    if (onCitus) {
      // distributed with its partitions: each partition's trigger is dropped and made again around it
      t.true(await createDistributedTable(s, 'events', 'store_id', { colocateWith: 'stores', notice: false }));
    } else {
      t.true(await enableRowLevelSecurity(s, 'logs', { column: 'store_id' }));
    }
    for (const table of ['events', 'events_p1', 'events_p2', ...(onCitus ? [] : ['logs', 'logs_old'])]) {
      t.is(await triggersOn(s, table), 1, `${table}: one trigger`);
    }
    t.false(await enableRowLevelSecurity(s, 'events', { column: 'store_id' }), 'a second run changes nothing');
    t.is(await triggersOn(s, 'events_p2'), 1);
    await withoutTenant(async () => {
      await s.query('INSERT INTO events VALUES (1, 1), (2, 1), (3, 1)');
      if (!onCitus) await s.query('INSERT INTO logs_old VALUES (1, 1), (2, 1)');
    });
    await refusedByDatabase(
      t,
      () => withTenant(2, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE events_p2'; END $$`)),
      'events_p2',
      'a partition',
    );
    await refusedByDatabase(
      t,
      () => withTenant(2, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE events'; END $$`)),
      'events',
      'the partitioned table',
    );
    t.is(await count(s, 'events'), 3);
    if (!onCitus) {
      await refusedByDatabase(
        t,
        () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE logs_old'; END $$`)),
        'logs_old',
        'a child',
      );
      await refusedByDatabase(
        t,
        () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE ONLY logs'; END $$`)),
        'logs',
        'ONLY the parent',
      );
      t.is(await count(s, 'logs'), 2);
    }
    // disable removes them all, at every depth
    t.true(await disableRowLevelSecurity(s, 'events'));
    for (const table of ['events', 'events_p1', 'events_p2']) t.is(await triggersOn(s, table), 0, `${table}: no trigger`);
    await withTenant(2, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE events_p2'; END $$`));
    t.is(await count(s, 'events'), 1, 'without the trigger the partition is emptied');
  } finally {
    await withoutTenant(async () => {
      await s.query('DROP TABLE IF EXISTS events');
      await s.query('DROP TABLE IF EXISTS logs CASCADE');
    });
  }
});

test.serial(
  'a tenant table whose trigger was dropped: the doctor reports it, a new instance refuses rows, enableRowLevelSecurity puts it back',
  async (t) => {
    await seed(t);
    const { sequelize: s, db } = t.context;
    await dropTrigger(s, 'products');
    try {
      t.is(await triggersOn(s, 'products'), 0);
      const reports = await inspect(s);
      const products = reports.find((r) => r.table === 'products');
      t.is(products?.rls, 'on');
      const problem = products?.problems.find((p) => /row-level security is incomplete/.test(p.message));
      t.truthy(problem, JSON.stringify(products));
      t.is(problem?.severity, 'warn');
      t.regex(
        problem?.message ?? '',
        /missing: the TRUNCATE trigger sequelize_multitenant_no_truncate \(row-level security does not apply to TRUNCATE/,
      );
      t.regex(problem?.message ?? '', /enableRowLevelSecurity\(queryInterface, 'products', \{ column: 'store_id' \}\)/);
      t.false(/the policy/.test(problem?.message ?? ''), 'the policy is there');
      // --json prints the reports as they are
      t.regex(JSON.stringify({ tables: reports }), /"message":"row-level security is incomplete, missing: the TRUNCATE trigger/);
      t.deepEqual(
        reports.find((r) => r.table === 'stores')?.problems.filter((p) => /row-level security/.test(p.message)),
        [],
        'stores is complete',
      );

      // an instance that looks at the tables refuses statements about rows while the trigger is missing
      if (db.kind !== 'embedded') {
        const other = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
        multitenant(other, { ...reachesTheDatabase, rls: true, notice: false });
        const { Product } = defineStoreModels(other);
        try {
          await t.throwsAsync(() => withTenant(1, () => Product.findAll()), {
            instanceOf: MultitenantError,
            message:
              /table without row-level security \(rls: true\): products \(missing: the TRUNCATE trigger sequelize_multitenant_no_truncate\)/,
          });
          t.is((await withoutTenant(() => Product.findAll())).length, 6, 'withoutTenant runs');
          await other.sync();
          t.is((await withTenant(1, () => Product.findAll())).length, 2, 'sync made the trigger again');
        } finally {
          await other.close();
        }
      } else {
        t.true(await enableRowLevelSecurity(s, 'products', { column: 'store_id' }), 'made again');
      }
      t.is(await triggersOn(s, 'products'), 1);
      t.deepEqual(
        (await inspect(s)).flatMap((r) => r.problems).filter((p) => /row-level security/.test(p.message)),
        [],
      );
      t.false(await enableRowLevelSecurity(s, 'products', { column: 'store_id' }));
    } finally {
      await enableRowLevelSecurity(s, 'products', { column: 'store_id' });
    }
  },
);

test.serial(
  'a trigger of that name that is disabled, or calls another function, is made again; the doctor reports it meanwhile',
  async (t) => {
    await seed(t);
    const { sequelize: s } = t.context;
    await withoutTenant(() =>
      s.transaction(async (transaction) => {
        if (onCitus) await s.query('SET LOCAL citus.enable_unsafe_triggers = on', { transaction });
        await s.query(`ALTER TABLE products DISABLE TRIGGER ${TRIGGER}`, { transaction });
      }),
    );
    t.regex(
      (await inspect(s))
        .find((r) => r.table === 'products')
        ?.problems.map((p) => p.message)
        .join('\n') ?? '',
      /missing: the TRUNCATE trigger/,
    );
    t.true(await enableRowLevelSecurity(s, 'products', { column: 'store_id' }));
    t.is(await triggersOn(s, 'products'), 1);
    await refusedByDatabase(
      t,
      () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE products'; END $$`)),
      'products',
      'enabled again',
    );
    // one of that name calling a function that lets everything through
    await withoutTenant(() =>
      s.transaction(async (transaction) => {
        if (onCitus) await s.query('SET LOCAL citus.enable_unsafe_triggers = on', { transaction });
        await s.query('CREATE FUNCTION let_through() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$', { transaction });
        await s.query(`DROP TRIGGER ${TRIGGER} ON products`, { transaction });
        await s.query(`CREATE TRIGGER ${TRIGGER} BEFORE TRUNCATE ON products FOR EACH STATEMENT EXECUTE FUNCTION let_through()`, {
          transaction,
        });
      }),
    );
    t.regex(
      (await inspect(s))
        .find((r) => r.table === 'products')
        ?.problems.map((p) => p.message)
        .join('\n') ?? '',
      /missing: the TRUNCATE trigger/,
    );
    t.true(await enableRowLevelSecurity(s, 'products', { column: 'store_id' }));
    t.is(await triggersOn(s, 'products'), 1);
    await withoutTenant(() => s.query('DROP FUNCTION let_through()'));
    await refusedByDatabase(
      t,
      () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE products'; END $$`)),
      'products',
      'made again',
    );
    t.deepEqual(await perStore(s), SEEDED);
  },
);

// the owner role may create schemas only on a database it owns (a PostgreSQL server): skipped on the embedded one and on Citus
(onEmbedded() || onCitus ? test.skip : test.serial)(
  'the function lives in the schema of the table it guards, and goes with the last trigger that calls it',
  async (t) => {
    const { sequelize: s } = t.context;
    await withoutTenant(async () => {
      await s.query('CREATE SCHEMA "Other"');
      await s.query('CREATE TABLE "Other".things (store_id bigint NOT NULL, id bigint NOT NULL)');
      await s.query('INSERT INTO "Other".things VALUES (1, 1), (2, 1)');
    });
    const table = { tableName: 'things', schema: 'Other' };
    const inOther = async () =>
      Number(
        (
          (await q(
            s,
            `SELECT count(*)::int AS n FROM pg_proc WHERE proname = '${FUNCTION}' AND pronamespace = '"Other"'::regnamespace`,
          )) as Array<{
            n: number;
          }>
        )[0]?.n,
      );
    try {
      t.true(await enableRowLevelSecurity(s, table, { column: 'store_id' }));
      t.is(await inOther(), 1);
      t.is(await triggersOn(s, '"Other".things'), 1);
      const err = await t.throwsAsync(() => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE "Other".things'; END $$`)));
      t.regex((err as { original?: { message?: string } }).original?.message ?? '', /^TRUNCATE of "Other"\.things refused/);
      t.is(await count(s, '"Other".things'), 2);
      t.true(await disableRowLevelSecurity(s, table));
      t.is(await inOther(), 0, 'no trigger calls it any more: dropped');
      t.is(await functions(s), 1, "the one of the tables' own schema stays");
    } finally {
      await withoutTenant(() => s.query('DROP SCHEMA "Other" CASCADE'));
    }
  },
);

(onCitus ? test.serial : test.skip)(
  'Citus: the doctor distributes a table that carries the trigger — dropped before, made again after',
  async (t) => {
    const { sequelize: s, db } = t.context;
    await withoutTenant(() => s.query('CREATE TABLE lates (store_id bigint NOT NULL, id bigint NOT NULL, PRIMARY KEY (store_id, id))'));
    const other = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
    multitenant(other, { ...reachesTheDatabase, rls: true, notice: false });
    defineStoreModels(other);
    other.define(
      'Late',
      { store_id: { type: DataTypes.BIGINT, primaryKey: true }, id: { type: DataTypes.BIGINT, primaryKey: true } },
      { tableName: 'lates', tenantKey: 'store_id', timestamps: false },
    );
    try {
      t.true(await enableRowLevelSecurity(s, 'lates', { column: 'store_id' }));
      const report = (await inspect(other)).find((r) => r.table === 'lates');
      const fix = report?.problems.find((p) => /not distributed on its tenant column/.test(p.message))?.fix.map((f) => f.sql) ?? [];
      t.is(fix.length, 3, JSON.stringify(report));
      t.is(fix[0], `DROP TRIGGER ${TRIGGER} ON "lates"`);
      t.regex(fix[1] ?? '', /^SELECT create_distributed_table\('"lates"', 'store_id', colocate_with => '"stores"'\)$/);
      t.regex(
        fix[2] ?? '',
        /^DO .*citus\.enable_unsafe_triggers.*CREATE TRIGGER sequelize_multitenant_no_truncate BEFORE TRUNCATE ON "lates"/,
      );
      // without the first, Citus refuses: "cannot distribute relation "lates" because it has triggers"
      await t.throwsAsync(() => withoutTenant(() => s.query(fix[1] as string)), { message: /because it has triggers/ });
      for (const sql of fix) await withoutTenant(() => s.query(sql));
      t.is(await triggersOn(s, 'lates'), 1);
      await withoutTenant(() => s.query('INSERT INTO lates VALUES (1, 1), (2, 1)'));
      await refusedByDatabase(
        t,
        () => withTenant(1, () => s.query(`DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE lates'; END $$`)),
        'lates',
        'distributed by the doctor',
      );
      t.is(await count(s, 'lates'), 2);
      t.deepEqual((await inspect(other)).find((r) => r.table === 'lates')?.problems, []);
    } finally {
      await other.close();
      await withoutTenant(() => s.query('DROP TABLE IF EXISTS lates'));
    }
  },
);
