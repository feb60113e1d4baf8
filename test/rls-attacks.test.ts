// What an adversarial review of `rls: true` found (given only the package and the README), each as a
// test: messages that hide transaction control from the library's per-connection cache — a ROLLBACK in
// a longer message, a comment before ROLLBACK / COMMIT, a COMMIT that fails, a trailing line comment —
// and then the next statement ran under another unit of work's setting. Also TRUNCATE (not subject to
// policies), partitions and inheritance children (tables of their own), and lone surrogates (which
// reach PostgreSQL as another tenant's string). One connection (pool max 1) makes reuse deterministic.
// What the tables hold is read inside withoutTenant (the bypass), so the file also runs on PGlite.
import anyTest, { type TestFn } from 'ava';
import { QueryTypes, Sequelize, type Transaction } from 'sequelize';
import {
  enableRowLevelSecurity,
  InvalidTenantError,
  MultitenantError,
  multitenant,
  UnscopedQueryError,
  withoutTenant,
  withTenant,
} from '../src/index';
import { onCitus, onEmbedded } from './helpers/db';
import { createRlsDatabase, defineStoreModels, type RlsDatabase, reachesTheDatabase, storesSeen } from './helpers/rls';

interface Ctx {
  db: RlsDatabase;
  sequelize: Sequelize;
  Store: ReturnType<typeof defineStoreModels>['Store'];
  Product: ReturnType<typeof defineStoreModels>['Product'];
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createRlsDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
  multitenant(sequelize, { ...reachesTheDatabase, rls: true, notice: false });
  const models = defineStoreModels(sequelize);
  await sequelize.sync();
  t.context = { db, sequelize, ...models };
});

test.after.always(async (t) => {
  await t.context?.sequelize?.close();
  await t.context?.db?.drop();
});

async function seed(t: { context: Ctx }): Promise<void> {
  const { sequelize, Store, Product } = t.context;
  await withoutTenant(async () => {
    await sequelize.query('DELETE FROM products');
    await sequelize.query('DELETE FROM stores');
    await Store.bulkCreate([1, 2, 3].map((id) => ({ id, name: `s${id}` })));
    await Product.bulkCreate([1, 2, 3].flatMap((s) => [1, 2].map((id) => ({ store_id: s, id, name: `p${id}-of-${s}` }))));
  });
}
const q = (s: Sequelize, sql: string, transaction?: Transaction) => s.query(sql, { type: QueryTypes.SELECT, transaction });
const allRows = (s: Sequelize) => withoutTenant(() => q(s, 'SELECT store_id::int, id::int FROM products ORDER BY 1, 2'));

test.serial('a ROLLBACK inside a longer raw message does not leave the previous tenant in force', async (t) => {
  await seed(t);
  const { sequelize: s, Store } = t.context;
  await withTenant(2, () => storesSeen(s)); // the connection holds tenant 2
  const a = (await withTenant(1, () => q(s, 'SELECT 1; ROLLBACK; SELECT store_id FROM products'))) as Array<{ store_id?: string }>;
  t.deepEqual([...new Set(a.filter((r) => r.store_id).map((r) => Number(r.store_id)))], onCitus ? [] : [1]);
  t.deepEqual(await withTenant(1, () => storesSeen(s)), [1]);
  await withoutTenant(() => Store.findAll()); // bypass on
  await withTenant(1, () => q(s, 'SELECT 1; ROLLBACK'));
  t.deepEqual(await withTenant(1, () => storesSeen(s)), [1]);
  await withTenant(1, () => s.query('DELETE FROM products WHERE id = 2'));
  t.deepEqual(
    await allRows(s),
    [
      { store_id: 1, id: 1 },
      { store_id: 2, id: 1 },
      { store_id: 2, id: 2 },
      { store_id: 3, id: 1 },
      { store_id: 3, id: 2 },
    ],
    "only tenant 1's product 2 was deleted",
  );
  // no tenant, after a bypass and a hidden ROLLBACK
  await withoutTenant(() => Store.findAll());
  t.deepEqual(
    ((await q(s, 'SELECT 1; ROLLBACK; SELECT store_id FROM products')) as Array<{ store_id?: string }>).filter((r) => r.store_id),
    [],
  );
  t.deepEqual(await storesSeen(s), []);
});

test.serial(
  'inside a transaction, a message that rolls back and goes on is refused (its later statements would run under undone settings)',
  async (t) => {
    await seed(t);
    const { sequelize: s, Store } = t.context;
    for (const tail of ['ROLLBACK; SELECT store_id FROM products', 'ROLLBACK TO SAVEPOINT s1; SELECT store_id FROM products']) {
      await withoutTenant(() => storesSeen(s)); // the session holds the bypass
      const tx = await s.transaction();
      try {
        await s.query('SAVEPOINT s1', { transaction: tx });
        t.deepEqual(await withTenant(1, () => storesSeen(s, tx)), [1]); // SET inside the transaction
        await t.throwsAsync(() => withTenant(1, () => q(s, tail, tx)), { message: /controls the transaction/ }, tail);
        await t.throwsAsync(() => q(s, tail, tx), { message: /controls the transaction/ }, `${tail} (no tenant)`);
      } finally {
        await tx.rollback();
      }
    }
    // withoutTenant runs it; so does a message outside any transaction (its SETs were made before it)
    await withoutTenant(() => Store.findAll());
    const outside = (await withTenant(2, () => q(s, 'BEGIN; SELECT 1; ROLLBACK; SELECT store_id FROM products'))) as Array<{
      store_id?: string;
    }>;
    t.deepEqual([...new Set(outside.filter((r) => r.store_id).map((r) => Number(r.store_id)))], onCitus ? [] : [2]);
  },
);

test.serial('transaction control behind a comment is seen: ROLLBACK, ROLLBACK TO SAVEPOINT, COMMIT', async (t) => {
  await seed(t);
  const { sequelize: s, Store } = t.context;
  for (const rollback of ['/* undo */ ROLLBACK', '-- undo\nROLLBACK']) {
    await withTenant(2, () => storesSeen(s));
    await withTenant(1, async () => {
      await s.query('BEGIN');
      await storesSeen(s); // SET inside the transaction
      await s.query(rollback); // ... undone
    });
    t.deepEqual(await withTenant(1, () => storesSeen(s)), [1], rollback);
  }
  // a savepoint rolled back behind a comment, inside the request's transaction
  const seen = await withTenant(1, () =>
    s.transaction(async (transaction) => {
      await withoutTenant(() => Store.findAll({ transaction }));
      await s.query('SAVEPOINT s1', { transaction });
      await storesSeen(s, transaction);
      await s.query('/* retry */ ROLLBACK TO SAVEPOINT s1', { transaction });
      return storesSeen(s, transaction);
    }),
  );
  t.deepEqual(seen, [1]);
});

test.serial('a COMMIT the library did not recognise, then an error: settings are still sent to everyone after', async (t) => {
  await seed(t);
  const { sequelize: s, Product } = t.context;
  await withTenant(1, async () => {
    await s.query('BEGIN');
    await Product.findAll();
    await s.query('/* done */ COMMIT');
  });
  await withoutTenant(() => q(s, 'SELECT count(*) FROM stores'));
  await withTenant(2, () => q(s, 'SELECT nope FROM products').catch(() => undefined));
  for (const tenant of [1, 2, 3]) t.deepEqual(await withTenant(tenant, () => storesSeen(s)), [tenant]);
  t.deepEqual(await storesSeen(s), []);
  await withTenant(3, () => s.query('DELETE FROM products'));
  t.deepEqual(
    (await allRows(s)).map((r) => (r as { store_id: number }).store_id),
    [1, 1, 2, 2],
  );
});

test.serial('a hand-written COMMIT that fails (a deferred unique key) undoes the SETs made in it', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  await withoutTenant(() =>
    s.query('CREATE TABLE deferred_keys (store_id bigint NOT NULL, k int NOT NULL, UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)'),
  );
  try {
    await withTenant(1, () => storesSeen(s)); // the session holds tenant 1
    await s.query('BEGIN');
    await withTenant(2, () => storesSeen(s)); // SET to 2 inside the transaction
    await withoutTenant(() => s.query('INSERT INTO deferred_keys VALUES (1, 1), (1, 1)'));
    await t.throwsAsync(() => s.query('COMMIT')); // fails: everything, the SETs too, is rolled back
    t.deepEqual(await withTenant(2, () => storesSeen(s)), [2]);
    t.deepEqual(await withTenant(1, () => storesSeen(s)), [1]);
    t.deepEqual(await storesSeen(s), []);
  } finally {
    await withoutTenant(() => s.query('DROP TABLE deferred_keys'));
  }
});

test.serial('a trailing line comment does not swallow what the library appends (Citus: the COMMIT)', async (t) => {
  await seed(t);
  const { sequelize: s, Product } = t.context;
  await withoutTenant(() => q(s, 'SELECT count(*) FROM stores; -- admin count'));
  t.deepEqual(await Product.findAll(), []);
  t.deepEqual(await storesSeen(s), []);
  t.deepEqual(await withTenant(1, () => q(s, 'SELECT store_id::int FROM products WHERE id = 1 -- list')), [{ store_id: 1 }]);
  const [, deleted] = (await s.query('DELETE FROM products')) as [unknown, { rowCount: number }];
  t.is(deleted.rowCount, 0);
  t.is((await allRows(s)).length, 6);
});

test.serial('TRUNCATE, which policies do not filter, is refused on a tenant table outside withoutTenant', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  for (const sql of [
    'TRUNCATE products',
    'truncate table products',
    '/* x */ TRUNCATE products',
    'SELECT 1; TRUNCATE products',
    'TRUNCATE ONLY "products" RESTART IDENTITY',
    'TRUNCATE public.products',
    'TRUNCATE Products',
  ]) {
    const refused = await t.throwsAsync(() => withTenant(1, () => s.query(sql)), { instanceOf: UnscopedQueryError }, sql);
    t.regex(refused?.message ?? '', /TRUNCATE is not subject to row-level security/);
    await t.throwsAsync(() => s.query(sql), { instanceOf: UnscopedQueryError }, `${sql} (no tenant)`);
  }
  await withoutTenant(() => s.query('CREATE TABLE scratch (id int)'));
  await withTenant(1, () => s.query('TRUNCATE scratch')); // a global table: nothing to filter
  await t.throwsAsync(() => withTenant(1, () => s.query('TRUNCATE scratch CASCADE')), { message: /CASCADE/ });
  await withoutTenant(() => s.query('DROP TABLE scratch'));
  t.is((await allRows(s)).length, 6, 'nothing was truncated');
});

// a local partitioned table on the Citus coordinator: covered on PostgreSQL (skipped on Citus)
(onCitus ? test.skip : test.serial)(
  'partitions and inheritance children get the policy too: read directly, they show the tenant only',
  async (t) => {
    const { sequelize: s } = t.context;
    await withoutTenant(async () => {
      await s.query('CREATE TABLE events (store_id bigint NOT NULL, id int NOT NULL) PARTITION BY HASH (store_id)');
      await s.query('CREATE TABLE events_p0 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 0)');
      await s.query('CREATE TABLE events_p1 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1)');
      await s.query('CREATE TABLE notes_base (store_id bigint NOT NULL, id int NOT NULL)');
      await s.query('CREATE TABLE notes_child () INHERITS (notes_base)');
    });
    try {
      t.true(await enableRowLevelSecurity(s, 'events', { column: 'store_id' }));
      t.true(await enableRowLevelSecurity(s, 'notes_base', { column: 'store_id' }));
      await withoutTenant(async () => {
        await s.query('INSERT INTO events SELECT s, 1 FROM generate_series(1, 4) s');
        await s.query('INSERT INTO notes_child SELECT s, 1 FROM generate_series(1, 4) s');
      });
      const ids = (rows: unknown[]) => (rows as Array<{ store_id: string }>).map((r) => Number(r.store_id)).sort();
      t.deepEqual(ids(await withTenant(1, () => q(s, 'SELECT store_id FROM events_p0 UNION ALL SELECT store_id FROM events_p1'))), [1]);
      t.deepEqual(ids(await withTenant(3, () => q(s, 'SELECT store_id FROM notes_child'))), [3]);
      t.deepEqual(ids(await q(s, 'SELECT store_id FROM events_p0 UNION ALL SELECT store_id FROM events_p1')), []);
      await withTenant(1, () => s.query('DELETE FROM events_p0; DELETE FROM events_p1'));
      t.deepEqual(ids(await withoutTenant(() => q(s, 'SELECT store_id FROM events'))), [2, 3, 4]);
    } finally {
      await withoutTenant(() => s.query('DROP TABLE events; DROP TABLE notes_child; DROP TABLE notes_base'));
    }
  },
);

test.serial('a tenant string with a lone surrogate or a NUL is refused (it would reach PostgreSQL as another string)', async (t) => {
  for (const bad of ['\uD800', 'a\uDBFF', '\uDC00b', 'x\u0000y']) {
    t.throws(() => withTenant(bad, () => undefined), { instanceOf: InvalidTenantError });
  }
  t.notThrows(() => withTenant('\uD83D\uDE00', () => undefined), 'a well-formed pair is fine');
});

// ---- the second review round

test.serial('ROLLBACK AND CHAIN undoes the SET although a transaction goes on', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  await withTenant(2, () => storesSeen(s));
  const seen = await withTenant(1, async () => {
    await s.query('BEGIN');
    await storesSeen(s); // SET tenant 1 inside the transaction
    await s.query('ROLLBACK AND CHAIN'); // undone; a new transaction starts
    const rows = await storesSeen(s);
    await s.query('DELETE FROM products WHERE id = 1');
    await s.query('COMMIT');
    return rows;
  });
  t.deepEqual(seen, [1]);
  t.deepEqual(
    (await allRows(s)).filter((r) => (r as { id: number }).id === 1).map((r) => (r as { store_id: number }).store_id),
    [2, 3],
  );
});

test.serial('ROLLBACK with a comment between its words is still a ROLLBACK TO', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  for (const rollback of ['ROLLBACK /* undo */ TO SAVEPOINT s', 'ROLLBACK -- undo\nTO SAVEPOINT s', 'ROLLBACK WORK /**/ TO s']) {
    const seen = await s.transaction(async (transaction) => {
      await withTenant(2, () => q(s, 'SELECT 1 FROM products WHERE store_id = 2', transaction));
      await s.query('SAVEPOINT s', { transaction });
      await withTenant(1, () => q(s, 'SELECT 1 FROM products WHERE store_id = 1', transaction));
      await s.query(rollback, { transaction });
      return withTenant(1, () => storesSeen(s, transaction));
    });
    t.deepEqual(seen, [1], rollback);
  }
});

test.serial('messages read alike by the library and PostgreSQL: \\r ends a comment, long dollar tags, é$$, backslashes', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  const tag = `$${'t'.repeat(70)}$`;
  for (const [label, sql] of [
    ['CR ends a -- comment', 'SELECT 1 -- note\r; ROLLBACK; SELECT store_id FROM products'],
    ['dollar tag > 62 chars', `SELECT ${tag}'${tag}; ROLLBACK; SELECT store_id FROM products --'`],
    ['non-ASCII identifier é$$', 'SELECT 1 AS é$$; ROLLBACK; SELECT store_id, 1 AS é$$ FROM products'],
  ]) {
    await withTenant(2, () => storesSeen(s));
    const rows = (await withTenant(1, () => q(s, sql as string))) as unknown[];
    const stores = [
      ...new Set(
        rows
          .flat(2)
          .map((r) => Number((r as { store_id?: string }).store_id))
          .filter((n) => n > 0),
      ),
    ];
    t.deepEqual(stores, onCitus ? [] : [1], label);
    t.deepEqual(await withTenant(1, () => storesSeen(s)), [1], `${label}: the next statement`);
  }
  // inside a transaction on a savepoint (Citus too)
  const seen = await s.transaction(async (transaction) => {
    await withTenant(2, () => storesSeen(s, transaction));
    await s.query('SAVEPOINT s', { transaction });
    await withTenant(1, () => storesSeen(s, transaction));
    const attack = await withTenant(1, () =>
      q(s, 'SELECT 1 -- n\r; ROLLBACK TO SAVEPOINT s; SELECT store_id FROM products', transaction),
    ).then(
      (rows) => ({ rows }),
      (err: Error) => ({ err }),
    );
    // refused before it is sent (the message holds transaction control), or run with the tenant set again
    if ('err' in attack) t.true(attack.err instanceof MultitenantError, String(attack.err));
    else t.deepEqual(attack.rows, [{ store_id: '1' }]);
    return withTenant(1, () => storesSeen(s, transaction));
  });
  t.deepEqual(seen, [1]);
});

test.serial('standard_conforming_strings off: a backslash in a string is not trusted', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  try {
    await s.query('SET standard_conforming_strings = off');
    const sql = String.raw`SELECT '\' , ' AS note; ROLLBACK; SELECT store_id FROM products -- '`;
    await withTenant(2, () => storesSeen(s));
    const rows = (await withTenant(1, () => q(s, sql))) as unknown[];
    const stores = [
      ...new Set(
        rows
          .flat(2)
          .map((r) => Number((r as { store_id?: string }).store_id))
          .filter((n) => n > 0),
      ),
    ];
    t.deepEqual(stores, onCitus ? [] : [1]);
    t.deepEqual(await withTenant(1, () => storesSeen(s)), [1]);
  } finally {
    await s.query('SET standard_conforming_strings = on');
  }
});

// local partitioned tables: covered on PostgreSQL (skipped on Citus)
(onCitus ? test.skip : test.serial)(
  'TRUNCATE of a partition, a child, in a DO block or a function of the same message is refused',
  async (t) => {
    const { sequelize: s } = t.context;
    await withoutTenant(async () => {
      await s.query('CREATE TABLE ev (store_id bigint NOT NULL, id int NOT NULL) PARTITION BY HASH (store_id)');
      await s.query('CREATE TABLE ev_p0 PARTITION OF ev FOR VALUES WITH (MODULUS 2, REMAINDER 0)');
      await s.query('CREATE TABLE ev_p1 PARTITION OF ev FOR VALUES WITH (MODULUS 2, REMAINDER 1)');
    });
    try {
      await enableRowLevelSecurity(s, 'ev', { column: 'store_id' });
      await withoutTenant(() => s.query('INSERT INTO ev SELECT g, 1 FROM generate_series(1, 3) g'));
      for (const sql of [
        'TRUNCATE ev_p0, ev_p1',
        'TRUNCATE "ev_p1"',
        'DO $$ BEGIN TRUNCATE products; END $$',
        "DO $$ BEGIN EXECUTE 'TRUNCATE ' || 'products'; END $$",
        'CREATE FUNCTION pg_temp.t() RETURNS void LANGUAGE sql AS $f$ TRUNCATE products $f$; SELECT pg_temp.t()',
      ]) {
        await t.throwsAsync(() => withTenant(1, () => s.query(sql)), { instanceOf: UnscopedQueryError }, sql);
      }
      t.is(((await withoutTenant(() => q(s, 'SELECT count(*)::int AS n FROM ev'))) as Array<{ n: number }>)[0]?.n, 3);
      // a string that mentions it is no TRUNCATE
      t.deepEqual(await withTenant(1, () => q(s, "SELECT 'truncate me' AS x")), [{ x: 'truncate me' }]);
    } finally {
      await withoutTenant(() => s.query('DROP TABLE ev'));
    }
  },
);

test.serial('a statement sent on the client directly (around Sequelize) empties the cache', async (t) => {
  await seed(t);
  const { sequelize: s } = t.context;
  const seen = await s.transaction(async (transaction) => {
    await withTenant(2, () => storesSeen(s, transaction));
    await s.query('SAVEPOINT s', { transaction });
    await withTenant(1, () => storesSeen(s, transaction));
    const client = (transaction as unknown as { connection: { query(sql: string): Promise<unknown> } }).connection;
    await client.query('ROLLBACK TO SAVEPOINT s');
    return withTenant(1, () => storesSeen(s, transaction));
  });
  t.deepEqual(seen, [1]);
});

// three instances, each with a connection of its own: PGlite has one session for all (skipped there)
(onEmbedded() ? test.skip : test.serial)(
  "a statement of another Sequelize instance on this instance's connection (its transaction) runs with the current unit of work's setting, not the one the connection last held (#28 red team; several sessions: not on PGlite)",
  async (t) => {
    await seed(t);
    const { sequelize: s, db } = t.context;
    // a plain instance and a multitenant one without rls, connecting as the same role: on their own
    // connections they see nothing (no setting, the policies refuse every row)
    const plain = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
    const other = new Sequelize(db.url, { logging: false, pool: { max: 1 }, ...db.connectOptions() });
    multitenant(other, { ...reachesTheDatabase, notice: false });
    try {
      for (const [label, borrower] of [
        ['plain', plain],
        ['multitenant without rls', other],
      ] as const) {
        // the connection holds the bypass (withoutTenant), then tenant 2
        await withoutTenant(() => q(s, 'SELECT 1'));
        const read = (await withTenant(1, () =>
          s.transaction((tx) => q(borrower, 'SELECT store_id::int AS store FROM products ORDER BY 1', tx)),
        )) as Array<{ store: number }>;
        t.deepEqual(
          read.map((r) => r.store),
          [1, 1],
          `${label}: read under tenant 1`,
        );
        await withTenant(2, () => storesSeen(s));
        await withTenant(1, () =>
          s.transaction((tx) => borrower.query(`UPDATE products SET name = 'moved-${label}' WHERE id = 1`, { transaction: tx })),
        );
        const named = (await withoutTenant(() =>
          q(s, `SELECT store_id::int AS store FROM products WHERE name = 'moved-${label}' ORDER BY 1`),
        )) as Array<{ store: number }>;
        t.deepEqual(
          named.map((r) => r.store),
          [1],
          `${label}: update under tenant 1`,
        );
      }
    } finally {
      await plain.close();
      await other.close();
    }
  },
);
