// Row-level security (`rls: true`): the database's own second line. Every test connects as a role that
// owns the tables and is neither a superuser nor BYPASSRLS (those skip policies). Raw SQL — which the
// ORM layer never sees — is the main probe: what comes back, and what the database refuses to write.
// The same file runs on Citus (`npm run test:citus`), where the tenant must reach the workers.
import anyTest, { type TestFn } from 'ava';
import pg, { Client } from 'pg';
import { DataTypes, type Model, type ModelStatic, type Options, QueryTypes, Sequelize, type Transaction } from 'sequelize';
import {
  createDistributedTable,
  disableRowLevelSecurity,
  enableRowLevelSecurity,
  MultitenantError,
  multitenant,
  withoutTenant,
  withTenant,
} from '../src/index';
import { onCitus, onEmbedded } from './helpers/db';
import { createRlsDatabase, defineStoreModels, type RlsDatabase, reachesTheDatabase, storesSeen, watchingWire } from './helpers/rls';

// biome-ignore lint/suspicious/noExplicitAny: test models
type AnyModel = ModelStatic<Model<any, any>>;

interface Ctx {
  db: RlsDatabase;
  sequelize: Sequelize;
  Store: AnyModel;
  Product: AnyModel;
  Team: AnyModel;
  Note: AnyModel;
  /** Statements sent on the driver connections, settings included (what Sequelize's logging cannot show). */
  wire: string[];
  notices: string[];
}
const test = anyTest as TestFn<Ctx>;
const serverOnly = (db: RlsDatabase) => db.kind !== 'embedded';

/** Hostile text tenants: quotes, a comma (one tenant, not two), braces, backslashes, an injection attempt. */
const TEAMS = ['acme', 'acme,beta', "o'hara", "x'; SET sequelize_multitenant.bypass = 'on'; --", '{"}\\', 'beta'];

/** Counts what goes over each driver connection: the statements Sequelize sends and the library's SETs. */
function wireOptions(db: RlsDatabase, wire: string[]): Partial<Options> {
  return watchingWire(db.connectOptions(), (text) => wire.push(text));
}

function defineModels(sequelize: Sequelize) {
  const { Store, Product } = defineStoreModels(sequelize);
  const Team = sequelize.define(
    'Team',
    { slug: { type: DataTypes.STRING, primaryKey: true } },
    { tableName: 'teams', tenantKey: 'slug', timestamps: false },
  );
  const Note = sequelize.define(
    'Note',
    {
      team_slug: { type: DataTypes.STRING, primaryKey: true },
      id: { type: DataTypes.INTEGER, primaryKey: true },
      body: DataTypes.TEXT,
    },
    { tableName: 'notes', tenantKey: 'team_slug', timestamps: false },
  );
  Note.belongsTo(Team, { foreignKey: 'team_slug' });
  return { Store, Product, Team, Note };
}

test.before(async (t) => {
  const db = await createRlsDatabase();
  const wire: string[] = [];
  const notices: string[] = [];
  const sequelize = new Sequelize(db.url, {
    logging: false,
    pool: { max: Math.min(3, db.maxConnections) },
    ...wireOptions(db, wire),
  });
  multitenant(sequelize, { ...reachesTheDatabase, rls: true, notice: (m) => notices.push(m) });
  const models = defineModels(sequelize);
  await sequelize.sync();
  shared = sequelize;
  t.context = { db, sequelize, wire, notices, ...models };
});

test.after.always(async (t) => {
  await t.context?.sequelize?.close();
  await t.context?.db?.drop();
});

/** Three stores with the same product keys, six teams with one note each (bypass: the seed is explicit). */
async function seed(t: { context: Ctx }): Promise<void> {
  const { sequelize } = t.context;
  await withoutTenant(async () => {
    await sequelize.query('DELETE FROM products');
    await sequelize.query('DELETE FROM stores');
    await sequelize.query('DELETE FROM notes');
    await sequelize.query('DELETE FROM teams');
    await t.context.Store.bulkCreate([1, 2, 3].map((id) => ({ id, name: `store ${id}` })));
    await t.context.Product.bulkCreate([1, 2, 3].flatMap((s) => [1, 2].map((id) => ({ store_id: s, id, name: `s${s}-p${id}` }))));
    await t.context.Team.bulkCreate(TEAMS.map((slug) => ({ slug })));
    await t.context.Note.bulkCreate(TEAMS.map((slug) => ({ team_slug: slug, id: 1, body: `note of ${slug}` })));
  });
}

const select = <T = Record<string, unknown>>(s: Sequelize, sql: string, transaction?: Transaction) =>
  s.query(sql, { type: QueryTypes.SELECT, transaction }) as Promise<T[]>;
/** PGlite serves one connection at a time: the suite's own is closed before another one opens (it reopens on use). */
let shared: Sequelize | undefined;
async function alone(db: RlsDatabase): Promise<void> {
  if (db.kind !== 'embedded' || !shared) return;
  await (shared as unknown as { connectionManager: { pool: { destroyAllNow(): Promise<void> } } }).connectionManager.pool.destroyAllNow();
  // ... and its one session, which every connection shares, is the superuser's again
  const c = new Client({ connectionString: db.adminUrl });
  await c.connect();
  await c.query('RESET ROLE');
  await c.end();
}

/** What the table holds, read as the superuser (no policy applies to it). */
async function truth(db: RlsDatabase, sql: string): Promise<Record<string, unknown>[]> {
  await alone(db);
  const c = new Client({ connectionString: db.adminUrl });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

test.serial('sync made one forced policy on every tenant table, the tenant table included; a second sync changes nothing', async (t) => {
  const { sequelize, db } = t.context;
  const policies = () =>
    select<{ table: string; enabled: boolean; forced: boolean; policies: number }>(
      sequelize,
      `SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
              (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
         FROM pg_class c WHERE c.relname IN ('stores', 'products', 'teams', 'notes') AND c.relnamespace = to_regnamespace(current_schema())
        ORDER BY 1`,
    );
  const expected = ['notes', 'products', 'stores', 'teams'].map((table) => ({ table, enabled: true, forced: true, policies: 1 }));
  t.deepEqual(await policies(), expected);
  await sequelize.sync();
  await sequelize.sync();
  t.deepEqual(await policies(), expected);
  t.false(await enableRowLevelSecurity(sequelize, 'products', { column: 'store_id' }), 'nothing left to change');
  t.is(
    (await truth(db, `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = '${db.role}' AND NOT rolsuper AND NOT rolbypassrls`))[0]?.n,
    1,
  );
  t.deepEqual(
    t.context.notices.filter((m) => /superuser|BYPASSRLS/.test(m)),
    [],
  );
});

test.serial('raw SQL under withTenant(1) shows tenant 1 only: products, and the tenant table itself', async (t) => {
  await seed(t);
  const { sequelize } = t.context;
  await withTenant(1, async () => {
    t.deepEqual(await storesSeen(sequelize), [1]);
    t.deepEqual(
      (await select<{ id: string }>(sequelize, 'SELECT id FROM stores ORDER BY id')).map((r) => Number(r.id)),
      [1],
    );
    // a join with no tenant equality (Citus plans only colocated joins: there, the equality)
    t.is((await select(sequelize, `SELECT * FROM products p JOIN stores s ON ${onCitus ? 's.id = p.store_id' : 'true'}`)).length, 2);
    t.deepEqual(await select(sequelize, "SELECT name FROM products WHERE name LIKE 's2%' OR true ORDER BY name"), [
      { name: 's1-p1' },
      { name: 's1-p2' },
    ]);
  });
});

test.serial('no tenant and not in withoutTenant: the database shows and changes no tenant rows (fail closed)', async (t) => {
  await seed(t);
  const { sequelize, Product, db } = t.context;
  t.deepEqual(await storesSeen(sequelize), []);
  t.is((await Product.findAll()).length, 0, 'the ORM sent an unscoped query (non-strict): the database returned nothing');
  const [, updated] = (await sequelize.query("UPDATE products SET name = 'x'")) as [unknown, { rowCount: number }];
  t.is(updated.rowCount, 0);
  await t.throwsAsync(() => sequelize.query("INSERT INTO products (store_id, id, name) VALUES (1, 99, 'x')"), {
    message: /row-level security/,
  });
  t.is((await truth(db, "SELECT count(*)::int AS n FROM products WHERE name = 'x' OR id = 99"))[0]?.n, 0);
});

test.serial('withoutTenant sees and changes every tenant; several tenants see exactly theirs', async (t) => {
  await seed(t);
  const { sequelize } = t.context;
  t.deepEqual(await withoutTenant(() => storesSeen(sequelize)), [1, 2, 3]);
  t.deepEqual(await withTenant([1, 3], () => storesSeen(sequelize)), [1, 3]);
  t.deepEqual(await withTenant([2], () => storesSeen(sequelize)), [2]);
});

test.serial('raw UPDATE and DELETE without a filter touch the current tenant only', async (t) => {
  await seed(t);
  const { sequelize, db } = t.context;
  await withTenant(1, async () => {
    await sequelize.query("UPDATE products SET name = 'changed'");
    await sequelize.query('DELETE FROM products WHERE id = 2');
  });
  t.deepEqual(await truth(db, 'SELECT store_id::int, id::int, name FROM products ORDER BY 1, 2'), [
    { store_id: 1, id: 1, name: 'changed' },
    { store_id: 2, id: 1, name: 's2-p1' },
    { store_id: 2, id: 2, name: 's2-p2' },
    { store_id: 3, id: 1, name: 's3-p1' },
    { store_id: 3, id: 2, name: 's3-p2' },
  ]);
});

test.serial('the database refuses a raw INSERT of another tenant, and an UPDATE moving a row to it', async (t) => {
  await seed(t);
  const { sequelize, db } = t.context;
  await withTenant(1, async () => {
    await t.throwsAsync(() => sequelize.query("INSERT INTO products (store_id, id, name) VALUES (2, 50, 'smuggled')"), {
      message: /row-level security/,
    });
    // Citus refuses any change of the distribution column before the policy is asked
    await t.throwsAsync(() => sequelize.query('UPDATE products SET store_id = 2 WHERE id = 1'), {
      message: onCitus ? /modifying the partition value of rows is not allowed/ : /row-level security/,
    });
    await t.throwsAsync(() => sequelize.query('INSERT INTO stores (id) VALUES (9)'), { message: /row-level security/ });
    await sequelize.query("INSERT INTO products (store_id, id, name) VALUES (1, 50, 'own')");
  });
  t.deepEqual(await truth(db, 'SELECT store_id::int, id::int, name FROM products WHERE id = 50 OR name = $$smuggled$$'), [
    { store_id: 1, id: 50, name: 'own' },
  ]);
});

test.serial('sign-up: a new tenant row is created inside withoutTenant', async (t) => {
  await seed(t);
  const { Store, Product, db } = t.context;
  const store = await withoutTenant(() => Store.create({ id: 7, name: 'new' }));
  await withTenant(store, () => Product.create({ id: 1, name: 'first' }));
  t.deepEqual(await truth(db, 'SELECT store_id::int, name FROM products WHERE store_id = 7'), [{ store_id: 7, name: 'first' }]);
  t.deepEqual(await withTenant(7, () => t.context.sequelize.query('SELECT id::int FROM stores', { type: QueryTypes.SELECT })), [{ id: 7 }]);
});

// PGlite has one session for every connection: a "plain" one holds what the last connection set (skipped there)
(onEmbedded() ? test.skip : test.serial)(
  'a Sequelize without the plugin and a plain connection, same role, see nothing and write nothing',
  async (t) => {
    await seed(t);
    const { db } = t.context;
    await alone(db);
    const plain = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
    try {
      t.deepEqual(await plain.query('SELECT * FROM products', { type: QueryTypes.SELECT }), []);
      t.deepEqual(await plain.query('SELECT * FROM stores', { type: QueryTypes.SELECT }), []);
      await t.throwsAsync(() => plain.query("INSERT INTO products (store_id, id, name) VALUES (1, 77, 'x')"), {
        message: /row-level security/,
      });
    } finally {
      await plain.close();
    }
    // a connection of its own (PGlite has one session for all: what the last connection set, it holds)
    if (serverOnly(db)) {
      const c = new Client({ connectionString: db.url });
      await c.connect();
      try {
        t.is((await c.query('SELECT count(*)::int AS n FROM products')).rows[0].n, 0);
      } finally {
        await c.end();
      }
    }
  },
);

test.serial('text tenants: quotes, commas, braces, backslashes and injection attempts stay one tenant each', async (t) => {
  await seed(t);
  const { sequelize } = t.context;
  for (const slug of TEAMS) {
    const seen = await withTenant(slug, () => select<{ team_slug: string; body: string }>(sequelize, 'SELECT team_slug, body FROM notes'));
    t.deepEqual(seen, [{ team_slug: slug, body: `note of ${slug}` }], slug);
  }
  const two = await withTenant(['acme', "o'hara"], () =>
    select<{ team_slug: string }>(sequelize, 'SELECT team_slug FROM notes ORDER BY 1'),
  );
  t.deepEqual(
    two.map((r) => r.team_slug),
    ['acme', "o'hara"],
  );
  // the injection attempt did not switch the bypass on for what followed
  t.deepEqual(await storesSeen(sequelize), []);
});

test.serial('a raw SET of the setting by the application is not trusted: the next statement is set again', async (t) => {
  await seed(t);
  const { db } = t.context;
  await alone(db);
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
  multitenant(s, { ...reachesTheDatabase, rls: true, notice: false });
  defineModels(s);
  try {
    await withTenant(1, async () => {
      t.deepEqual(await storesSeen(s), [1]);
      if (onCitus) {
        // outside a transaction a session SET does not reach the workers: the statement itself carries it
        await s.query("SET sequelize_multitenant.tenant = '{2}'");
      } else {
        await s.query("SELECT set_config('sequelize_multitenant.tenant', '{2}', false)");
      }
      t.deepEqual(await storesSeen(s), [1]);
    });
  } finally {
    await s.close();
  }
});

test.serial('a raw message that starts with BEGIN (or COMMIT) and goes on runs under the current tenant, not the last one', async (t) => {
  await seed(t);
  const { db } = t.context;
  await alone(db);
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
  multitenant(s, { ...reachesTheDatabase, rls: true, notice: false });
  try {
    t.deepEqual(await withTenant(2, () => storesSeen(s)), [2]); // the connection holds tenant 2
    await withTenant(1, () => s.query("BEGIN; UPDATE products SET name = 'multi'; COMMIT"));
    await withTenant(3, () => s.query("COMMIT; UPDATE products SET name = 'after commit'"));
    t.deepEqual(await storesSeen(s), []);
  } finally {
    await s.close();
  }
  // on Citus such a message runs its own transaction control, into which no SET LOCAL can be put: the
  // workers see no tenant, so it changes nothing (fail closed)
  t.deepEqual(
    await truth(db, "SELECT store_id::int, name FROM products WHERE name IN ('multi', 'after commit') ORDER BY 1, name"),
    onCitus
      ? []
      : [
          { store_id: 1, name: 'multi' },
          { store_id: 1, name: 'multi' },
          { store_id: 3, name: 'after commit' },
          { store_id: 3, name: 'after commit' },
        ],
  );
});

test.serial('managed, unmanaged, rolled-back and nested (savepoint) transactions', async (t) => {
  await seed(t);
  const { sequelize } = t.context;
  // managed, with a tenant switch inside
  await withTenant(1, () =>
    sequelize.transaction(async (tx) => {
      t.deepEqual(await storesSeen(sequelize, tx), [1]);
      t.deepEqual(await withTenant(2, () => storesSeen(sequelize, tx)), [2]);
      t.deepEqual(await withoutTenant(() => storesSeen(sequelize, tx)), [1, 2, 3]);
      t.deepEqual(await storesSeen(sequelize, tx), [1]);
    }),
  );
  // unmanaged, rolled back after a tenant switch inside it
  const tx = await sequelize.transaction();
  t.deepEqual(await withTenant(3, () => storesSeen(sequelize, tx)), [3]);
  await tx.rollback();
  t.deepEqual(await withTenant(2, () => storesSeen(sequelize)), [2]);
  // a savepoint rolled back after it switched the tenant
  await withTenant(1, () =>
    sequelize.transaction(async (outer) => {
      t.deepEqual(await storesSeen(sequelize, outer), [1]);
      await t.throwsAsync(() =>
        sequelize.transaction({ transaction: outer }, async (inner) => {
          t.deepEqual(await withTenant(2, () => storesSeen(sequelize, inner)), [2]);
          throw new Error('roll the savepoint back');
        }),
      );
      t.deepEqual(await withTenant(2, () => storesSeen(sequelize, outer)), [2]);
      t.deepEqual(await storesSeen(sequelize, outer), [1]);
    }),
  );
  // a write in a rolled-back transaction left nothing
  const tx2 = await sequelize.transaction();
  await withTenant(1, () => sequelize.query("UPDATE products SET name = 'rolled back'", { transaction: tx2 }));
  await tx2.rollback();
  t.is((await truth(t.context.db, "SELECT count(*)::int AS n FROM products WHERE name = 'rolled back'"))[0]?.n, 0);
});

test.serial('one pooled connection: tenant 1, no tenant, tenant 2, a rolled-back switch, tenant 2 again', async (t) => {
  await seed(t);
  const { db } = t.context;
  await alone(db);
  const s = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
  multitenant(s, { ...reachesTheDatabase, rls: true, notice: false });
  try {
    t.deepEqual(await withTenant(1, () => storesSeen(s)), [1]);
    t.deepEqual(await storesSeen(s), []);
    t.deepEqual(await withTenant(2, () => storesSeen(s)), [2]);
    // the session holds 2; a transaction switches to 3 and is rolled back: the session holds 2 again,
    // and a cache that trusted the switch would skip the SET for tenant 3 below and show tenant 2's rows
    const tx = await s.transaction();
    t.deepEqual(await withTenant(3, () => storesSeen(s, tx)), [3]);
    await tx.rollback();
    t.deepEqual(await withTenant(3, () => storesSeen(s)), [3]);
    // the same with a COMMIT of a transaction that failed (PostgreSQL rolls it back)
    const tx2 = await s.transaction();
    t.deepEqual(await withTenant(1, () => storesSeen(s, tx2)), [1]);
    await t.throwsAsync(() => withTenant(1, () => s.query('SELECT 1/0', { transaction: tx2 })));
    await tx2.commit().catch(() => undefined);
    t.deepEqual(await withTenant(1, () => storesSeen(s)), [1]);
    t.deepEqual(await withoutTenant(() => storesSeen(s)), [1, 2, 3]);
    t.deepEqual(await storesSeen(s), []);
  } finally {
    await s.close();
  }
});

test.serial('≥ 400 interleaved concurrent requests over a small pool: every statement ran under its own tenant', async (t) => {
  await seed(t);
  const { sequelize } = t.context;
  const kinds = ['1', '2', '3', 'none', 'bypass', '1+2', 'tx'] as const;
  let wrong = 0;
  const requests = Array.from({ length: 420 }, (_, i) => kinds[(i * 5 + (i >> 3)) % kinds.length] as (typeof kinds)[number]);
  await Promise.all(
    requests.map(async (kind, i) => {
      await new Promise((r) => setTimeout(r, i % 7));
      let seen: number[];
      let expected: number[];
      if (kind === 'none') [seen, expected] = [await storesSeen(sequelize), []];
      else if (kind === 'bypass') [seen, expected] = [await withoutTenant(() => storesSeen(sequelize)), [1, 2, 3]];
      else if (kind === '1+2') [seen, expected] = [await withTenant([1, 2], () => storesSeen(sequelize)), [1, 2]];
      else if (kind === 'tx') {
        const tenant = (i % 3) + 1;
        seen = await withTenant(tenant, () => sequelize.transaction((tx) => storesSeen(sequelize, tx)));
        expected = [tenant];
      } else [seen, expected] = [await withTenant(Number(kind), () => storesSeen(sequelize)), [Number(kind)]];
      if (JSON.stringify(seen) !== JSON.stringify(expected)) wrong++;
    }),
  );
  t.is(wrong, 0);
  t.log(`${requests.length} requests over a pool of ${Math.min(3, t.context.db.maxConnections)}: ${wrong} saw another tenant's rows`);
});

// PGlite has one session: there is no backend to terminate (skipped there)
(onEmbedded() ? test.skip : test.serial)(
  'connections killed by the database mid-work are replaced; no statement runs under a stale or missing setting',
  async (t) => {
    const { db } = t.context;
    await seed(t);
    await alone(db);
    const s = new Sequelize(db.url, { logging: false, pool: { max: 2 }, retry: { max: 0 } });
    multitenant(s, { ...reachesTheDatabase, rls: true, notice: false });
    try {
      let wrong = 0;
      let failed = 0;
      let errors = 0;
      for (let round = 0; round < 6; round++) {
        const tenant = (round % 3) + 1;
        await Promise.all([1, 2].map(() => withTenant(tenant, () => storesSeen(s))));
        // a long statement under the tenant, killed while it runs
        const long = withTenant(tenant, () => s.query('SELECT pg_sleep(2), store_id FROM products')).catch(() => {
          failed++;
        });
        // killed once it runs (seen in pg_stat_activity), however long the machine takes to get there
        for (let i = 0; i < 400; i++) {
          const running = await truth(
            db,
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = '${db.role}' AND state = 'active' AND query LIKE 'SELECT pg_sleep(2)%'`,
          );
          if (running[0]?.n === 1) break;
          await new Promise((r) => setTimeout(r, 25));
        }
        await truth(db, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${db.role}' AND pid <> pg_backend_pid()`);
        await long;
        for (const next of [(tenant % 3) + 1, tenant, undefined, 'bypass'] as const) {
          // a dead connection the pool still hands out fails its statement (an error, never wrong rows):
          // tried again until the pool has replaced it
          const attempt = () => storesSeen(s);
          const retrying = async (): Promise<number[]> => {
            for (let i = 0; ; i++) {
              try {
                return await attempt();
              } catch (err) {
                if (i >= 50) throw err;
                errors++;
                await new Promise((r) => setTimeout(r, 25));
              }
            }
          };
          const seen = await (next === undefined ? retrying() : next === 'bypass' ? withoutTenant(retrying) : withTenant(next, retrying));
          const expected = next === undefined ? [] : next === 'bypass' ? [1, 2, 3] : [next];
          if (JSON.stringify(seen) !== JSON.stringify(expected)) wrong++;
        }
      }
      t.log(
        `6 rounds of pg_terminate_backend: ${failed} killed statements failed, ${errors} statements on dead connections failed and were retried, ${wrong} saw wrong rows`,
      );
      t.is(wrong, 0);
      t.true(failed >= 1, 'the killed statements failed');
    } finally {
      await s.close();
    }
  },
);

test.serial(
  'round trips: no SET when the connection holds the tenant, a switch rides in the statement; on Citus one SET LOCAL message per transaction',
  async (t) => {
    await seed(t);
    const { db } = t.context;
    const wire: string[] = [];
    await alone(db);
    const s = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...wireOptions(db, wire) });
    multitenant(s, { ...reachesTheDatabase, rls: true, notice: false });
    try {
      await withTenant(1, () => storesSeen(s)); // warm: the connection takes tenant 1
      wire.length = 0;
      await withTenant(1, async () => {
        for (let i = 0; i < 10; i++) await storesSeen(s);
      });
      const sets = wire.filter((w) => /sequelize_multitenant/.test(w));
      if (onCitus) {
        // outside a transaction each statement carries its tenant to the workers in a block of its own:
        // BEGIN; SET LOCAL ... (a message of its own: Citus sends the whole message to the workers), then
        // the statement and its COMMIT in one message
        t.is(sets.length, 10);
        t.true(sets.every((w) => /^BEGIN; SET LOCAL citus\.propagate_set_commands = E'local'; SET LOCAL [^;]*; SET LOCAL [^;]*$/.test(w)));
        t.is(wire.filter((w) => /^SELECT [^\n]*\n; COMMIT$/.test(w)).length, 10);
        t.is(wire.length, 20, 'one extra round trip per statement outside a transaction');
      } else {
        t.deepEqual(sets, [], 'no SET: the connection already holds tenant 1');
        t.is(wire.length, 10, 'no extra round trip');
      }
      // a switch of tenant rides in the statement's own message (PostgreSQL)
      wire.length = 0;
      await withTenant(3, () => storesSeen(s));
      t.is(wire.length, onCitus ? 2 : 1);
      if (!onCitus) t.regex(wire[0] as string, /^SET sequelize_multitenant\.tenant = E'\{"3"\}'; SELECT/);
      // a statement with bind parameters cannot share its message: the SET goes ahead, one round trip
      wire.length = 0;
      await withTenant(2, () => s.query('SELECT store_id FROM products WHERE id = $1', { bind: [1], type: QueryTypes.SELECT }));
      t.is(wire.length, onCitus ? 3 : 2, wire.join('\n'));
      wire.length = 0;
      await withTenant(1, () =>
        s.transaction(async (tx) => {
          for (let i = 0; i < 10; i++) await storesSeen(s, tx);
        }),
      );
      const inTx = wire.filter((w) => /sequelize_multitenant/.test(w));
      t.is(inTx.length, 1, 'one SET for the whole transaction');
      t.regex(
        inTx[0] as string,
        onCitus
          ? /^SET LOCAL citus\.propagate_set_commands = E'local'; SET LOCAL [^;]*; SET LOCAL [^;]*$/
          : /^SET sequelize_multitenant.*; SELECT/,
      );
      t.is(wire.length, onCitus ? 13 : 12, 'START TRANSACTION, 10 statements, COMMIT (and on Citus one SET LOCAL message)');
    } finally {
      await s.close();
    }
  },
);

test.serial('the real second line: with the ORM filters off (writeOnly), isolation holds through the policies alone', async (t) => {
  await seed(t);
  const { db } = t.context;
  await alone(db);
  const sent: string[] = [];
  const s = new Sequelize(db.url, {
    logging: (sql) => sent.push(sql),
    pool: { max: Math.min(2, db.maxConnections) },
    ...db.connectOptions(),
  });
  multitenant(s, { ...reachesTheDatabase, rls: true, writeOnly: true, notice: false });
  const { Product, Store } = defineModels(s);
  try {
    await withTenant(1, async () => {
      t.deepEqual(
        (await Product.findAll({ order: [['id', 'ASC']] })).map((p) => p.get('name')),
        ['s1-p1', 's1-p2'],
      );
      t.is(await Product.count(), 2);
      const stores = await Store.findAll({ include: [Product] });
      t.deepEqual(
        stores.map((st) => [Number(st.get('id')), (st.get('Products') as Model[]).length]),
        [[1, 2]],
      );
      await Product.update({ name: 'orm-update' }, { where: {} });
      await Product.destroy({ where: { id: 2 } });
      await Product.create({ id: 3, name: 'stamped' });
      // an ORM read with no condition at all, and a destroy without one, still stop at tenant 1
      t.is((await Product.findAll({ where: {} })).length, 2);
    });
    // the proof that the ORM added no filter: no statement but the INSERT names the tenant
    const reads = sent.filter((q) => /\b(SELECT|UPDATE|DELETE)\b/.test(q) && /"products"/i.test(q) && !/INSERT/.test(q));
    t.true(reads.length >= 5, reads.join('\n'));
    t.deepEqual(
      reads.filter((q) => /store_id"? (=|IN) /.test(q.replace(/ON "Store"."id" = "Products"."store_id"/, ''))),
      [],
    );
  } finally {
    await s.close();
  }
  t.deepEqual(await truth(db, 'SELECT store_id::int, id::int, name FROM products ORDER BY 1, 2'), [
    { store_id: 1, id: 1, name: 'orm-update' },
    { store_id: 1, id: 3, name: 'stamped' },
    { store_id: 2, id: 1, name: 's2-p1' },
    { store_id: 2, id: 2, name: 's2-p2' },
    { store_id: 3, id: 1, name: 's3-p1' },
    { store_id: 3, id: 2, name: 's3-p2' },
  ]);
});

test.serial('migration helpers: enable, idempotent, the SQL they send, disable; refusals name the table', async (t) => {
  const { sequelize, db } = t.context;
  await withoutTenant(() =>
    sequelize.query('CREATE TABLE legacy (account_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (account_id, id))'),
  );
  const sent: string[] = [];
  const logging = (sql: string) => sent.push(sql.replace(/^Executing \([^)]*\): /, ''));
  const qi = sequelize.getQueryInterface();
  t.true(await enableRowLevelSecurity(qi, 'legacy', { column: 'account_id', logging }));
  // PostgreSQL reads the settings once per statement (scalar sub-selects: InitPlans); Citus refuses
  // sub-selects in policies of distributed tables, so there they are read inline
  const setting = (name: string) => `current_setting('sequelize_multitenant.${name}', true)`;
  const tenants = `NULLIF(${setting('tenant')}, '')::uuid[]`;
  const condition = onCitus
    ? `(${setting('bypass')} = 'on' OR "account_id" = ANY (${tenants}))`
    : `((SELECT ${setting('bypass')} = 'on') OR "account_id" = ANY ((SELECT ${tenants})::uuid[]))`;
  // and the TRUNCATE trigger (row-level security does not apply to TRUNCATE), calling the function sync
  // already made in this schema; on Citus with citus.enable_unsafe_triggers on for that one statement
  const schema = (await select<{ schema: string }>(sequelize, 'SELECT current_schema() AS schema'))[0]?.schema;
  const trigger = `CREATE TRIGGER sequelize_multitenant_no_truncate BEFORE TRUNCATE ON "legacy" FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".sequelize_multitenant_refuse_truncate()`;
  t.deepEqual(
    sent.filter((q) => !/^(SELECT|WITH)\b/.test(q)),
    [
      'ALTER TABLE "legacy" ENABLE ROW LEVEL SECURITY',
      'ALTER TABLE "legacy" FORCE ROW LEVEL SECURITY',
      `CREATE POLICY sequelize_multitenant_isolation ON "legacy" AS PERMISSIVE FOR ALL USING ${condition} WITH CHECK ${condition}`,
      onCitus
        ? `DO $sequelize_multitenant$ DECLARE was text := pg_catalog.current_setting('citus.enable_unsafe_triggers'); BEGIN PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true); EXECUTE E'${trigger}'; PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', was, true); END $sequelize_multitenant$`
        : trigger,
    ],
  );
  t.false(await enableRowLevelSecurity(qi, 'legacy', { column: 'account_id' }));
  const a = '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c';
  await withTenant(a.toUpperCase(), () => sequelize.query(`INSERT INTO legacy VALUES ('${a}', 1)`));
  t.deepEqual(await withTenant(a, () => select(sequelize, 'SELECT id FROM legacy')), [{ id: 1 }]);
  t.deepEqual(await select(sequelize, 'SELECT id FROM legacy'), []);
  const refused = await t.throwsAsync(() => enableRowLevelSecurity(qi, 'legacy', { column: 'store_id' }), { instanceOf: MultitenantError });
  t.regex(refused?.message ?? '', /legacy has no column store_id; nothing was changed/);
  await t.throwsAsync(() => enableRowLevelSecurity(qi, 'nope', { column: 'x' }), { message: /table nope does not exist/ });
  t.true(await disableRowLevelSecurity(qi, 'legacy'));
  t.false(await disableRowLevelSecurity(qi, 'legacy'));
  t.is((await select(sequelize, 'SELECT id FROM legacy')).length, 1, 'no policy: the row is visible again');
  // another policy on the table keeps row-level security on
  await enableRowLevelSecurity(qi, 'legacy', { column: 'account_id' });
  await sequelize.query('CREATE POLICY app_own ON legacy USING (false)');
  const notes: string[] = [];
  t.true(await disableRowLevelSecurity(qi, 'legacy', { notice: (m) => notes.push(m) }));
  t.regex(notes[0] ?? '', /legacy has 1 other policy: row-level security stays enabled/);
  t.deepEqual(await truth(db, "SELECT relrowsecurity AS on FROM pg_class WHERE relname = 'legacy'"), [{ on: true }]);
  await sequelize.query('DROP TABLE legacy');
});

test.serial('sync warns when the connected role skips row-level security (a superuser)', async (t) => {
  const { db } = t.context;
  const notices: string[] = [];
  await alone(db);
  const s = new Sequelize(db.adminUrl, { logging: false, pool: { max: 1 } });
  multitenant(s, { ...reachesTheDatabase, rls: true, notice: (m) => notices.push(m) });
  s.define('Thing', { id: { type: DataTypes.BIGINT, primaryKey: true } }, { tableName: 'things_su', tenantKey: 'id', timestamps: false });
  try {
    await s.sync();
    t.true(
      notices.some((m) => /is a superuser: PostgreSQL skips row-level security for it/.test(m)),
      notices.join('\n'),
    );
  } finally {
    await s.query('DROP TABLE IF EXISTS things_su');
    await s.close();
  }
});

test.serial('rls is refused on another dialect, and must be a boolean', (t) => {
  const s = new Sequelize('mysql://u@127.0.0.1:1/x', { logging: false, dialectModule: {} });
  t.throws(() => multitenant(s, { ...reachesTheDatabase, rls: true }), {
    instanceOf: MultitenantError,
    message: /option rls needs PostgreSQL \(dialect mysql\)/,
  });
  const p = new Sequelize('postgres://u@127.0.0.1:1/x', { logging: false });
  t.throws(() => multitenant(p, { rls: 'yes' as unknown as boolean }), { message: /option rls must be a boolean/ });
  // a pg older than 8.21 does not report the transaction status the settings cache is kept by
  const oldPg = Object.create(pg) as typeof pg;
  Object.defineProperty(oldPg, 'Client', { value: function Client() {} });
  const o = new Sequelize('postgres://u@127.0.0.1:1/x', { logging: false, dialectModule: oldPg });
  t.throws(() => multitenant(o, { ...reachesTheDatabase, rls: true }), {
    instanceOf: MultitenantError,
    message: /option rls needs the pg driver 8.21 or later/,
  });
  t.notThrows(() => multitenant(o, { notice: false }), 'without rls, any pg');
});

(onCitus ? test.serial : test.skip)(
  'Citus: a table whose policy was made on PostgreSQL (sub-selects) is distributed by createDistributedTable',
  async (t) => {
    const { sequelize } = t.context;
    await sequelize.query('CREATE TABLE moved (store_id bigint NOT NULL, id bigint NOT NULL, PRIMARY KEY (store_id, id))');
    // the PostgreSQL form, as enableRowLevelSecurity makes it there
    const condition = `((SELECT current_setting('sequelize_multitenant.bypass', true) = 'on') OR store_id = ANY ((SELECT NULLIF(current_setting('sequelize_multitenant.tenant', true), '')::bigint[])::bigint[]))`;
    await sequelize.query(`CREATE POLICY sequelize_multitenant_isolation ON moved USING ${condition} WITH CHECK ${condition}`);
    await sequelize.query('ALTER TABLE moved ENABLE ROW LEVEL SECURITY; ALTER TABLE moved FORCE ROW LEVEL SECURITY');
    t.true(await createDistributedTable(sequelize, 'moved', 'store_id', { colocateWith: 'stores', notice: false }));
    await withoutTenant(() => sequelize.query('INSERT INTO moved VALUES (1, 1), (2, 1)'));
    t.deepEqual(await withTenant(2, () => select(sequelize, 'SELECT store_id::int FROM moved')), [{ store_id: 2 }]);
    t.deepEqual(await select(sequelize, 'SELECT store_id FROM moved'), []);
  },
);
