// The store example (`npm run example`) runs in the suite: on the embedded PGlite and on the test
// PostgreSQL server, each tenant sees only its rows and the SQL it sends carries the tenant.
import test from 'ava';
import { Sequelize } from 'sequelize';
import { type DemoStep, runDemo } from '../examples/store/demo';
import { SCHEMA } from '../examples/store/models';
import { createTestDatabase, onEmbedded } from './helpers/db';

function check(t: import('ava').ExecutionContext, steps: DemoStep[]) {
  const step = (as: string | null, method: string, path: string, n = 0) =>
    steps.filter((s) => s.as === as && s.method === method && s.path === path)[n] as DemoStep;
  const acme = step('acme', 'GET', '/products');
  const globex = step('globex', 'GET', '/products');
  t.deepEqual(
    acme.body.map((p: { name: string; storeId: string }) => [p.name, p.storeId]),
    [
      ['Anvil', '1'],
      ['Rocket skates', '1'],
    ],
  );
  t.deepEqual(
    globex.body.map((p: { name: string }) => p.name),
    ['Hammock', 'Doomsday device', 'Volcano lair'],
  );
  t.is(step('acme', 'GET', '/products/3').status, 404);
  t.is(step('acme', 'POST', '/products').body.storeId, '1');
  const heist = step('acme', 'POST', '/products', 1);
  t.deepEqual([heist.status, heist.body.error, heist.sql], [409, 'TenantMismatchError', []]);
  t.is(step('globex', 'POST', '/products/1/purchases').body.storeId, '2');
  // the database's composite foreign key refuses a purchase of globex's product 3 under acme
  const foreign = step('acme', 'POST', '/purchases');
  t.deepEqual([foreign.status, foreign.body.error], [409, 'SequelizeForeignKeyConstraintError']);
  t.deepEqual(
    [step('acme', 'GET', '/stats').body.products, step('acme', 'GET', '/stats').body.units, step('globex', 'GET', '/stats').body.units],
    [3, 2, 5],
  );
  t.is(step(null, 'GET', '/products').status, 401);
  t.is(step(null, 'GET', '/countries').body.length, 2);
  // Every statement on a tenant table carries the tenant of the request that sent it.
  for (const s of steps.filter((x) => x.as)) {
    const id = s.as === 'acme' ? 1 : 2;
    for (const q of s.sql.filter((x) => /"(products|purchases)"/.test(x))) {
      t.true(q.includes(`"store_id" = ${id}`) || q.includes(`VALUES (DEFAULT,${id},`), q);
    }
  }
}

test.serial('the example on the embedded PGlite', async (t) => {
  const lines: string[] = [];
  check(t, await runDemo({ url: '', print: (line) => lines.push(line) }));
  t.true(
    lines.some(
      (l) => l.startsWith('foreign keys made by sync(): ') && l.includes('purchases (store_id, product_id) → products (store_id, id)'),
    ),
  );
  t.true(
    lines.every((l) => l.length <= 400),
    'no line longer than 400 characters',
  );
});

// no PostgreSQL server here (the embedded run): the embedded case above covers it, reported as skipped
(onEmbedded() ? test.skip : test.serial)('the example on the PostgreSQL server', async (t) => {
  const db = await createTestDatabase();
  try {
    check(t, await runDemo({ url: db.url }));
  } finally {
    await db.drop();
    // on Citus the test database is a schema of the shared coordinator, and the example keeps its own
    // schema: dropped too, or the next file's `sync({ force: true })` meets its tables (Sequelize looks
    // foreign keys up by table name in every schema)
    if (db.kind === 'citus') {
      const admin = new Sequelize(process.env.CITUS_URL as string, { logging: false });
      await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
      await admin.close();
    }
  }
});
