// Tenant lifecycle at size (#30): exportTenant of a tenant with 100,000 and with 1,000,000 rows across
// three tables (rows per second, and the process's peak RSS while it runs: memory must stay flat), and
// deleteTenant of a 100,000-row tenant (seconds). The rows are made by the server (generate_series), so
// the process holds none of them before the export starts.
// Run: npm run bench:lifecycle  (SIZES=100000,1000000 to change; FK_INDEXES=0 leaves the foreign keys' columns unindexed, ANALYZE=0 deletes with the statistics of before the tenant's load; the test database choice: DATABASE_URL,
//      the local server, CITUS_URL with MULTITENANT_TEST_DB=citus, else an embedded PGlite)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataTypes, Sequelize } from 'sequelize';
import { createTestDatabase } from '../test/helpers/db';
import { lib } from './library';

const SIZES = (process.env.SIZES ?? '100000,1000000').split(',').map(Number);

/** Rows of each table for a tenant of `size` rows in all: 1 : 3 : 6 (products, orders, order lines). */
const split = (size: number) => ({
  products: Math.round(size / 10),
  orders: Math.round((size * 3) / 10),
  lines: Math.round((size * 6) / 10),
});

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: Math.min(db.maxConnections, 4) } });
  lib.multitenant(sequelize, { notice: false });
  const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
  sequelize.define('Store', { id: key(), name: DataTypes.TEXT }, { tableName: 'stores', timestamps: false, tenantKey: 'id' });
  sequelize.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.TEXT, price: DataTypes.DECIMAL(12, 2) },
    {
      tableName: 'products',
      timestamps: false,
      tenantKey: 'store_id',
    },
  );
  sequelize.define(
    'Order',
    { id: key(), store_id: key(), placed_at: DataTypes.DATE, note: DataTypes.TEXT },
    {
      tableName: 'orders',
      timestamps: false,
      tenantKey: 'store_id',
    },
  );
  sequelize.define(
    'OrderLine',
    { id: key(), store_id: key(), order_id: DataTypes.BIGINT, product_id: DataTypes.BIGINT, qty: DataTypes.INTEGER },
    {
      tableName: 'order_lines',
      timestamps: false,
      tenantKey: 'store_id',
    },
  );
  await sequelize.sync({ force: true });
  const plain = new Sequelize(db.url, { logging: false });
  await plain.query('ALTER TABLE products ADD FOREIGN KEY (store_id) REFERENCES stores (id)');
  await plain.query('ALTER TABLE orders ADD FOREIGN KEY (store_id) REFERENCES stores (id)');
  await plain.query('ALTER TABLE order_lines ADD FOREIGN KEY (order_id, store_id) REFERENCES orders (id, store_id)');
  await plain.query('ALTER TABLE order_lines ADD FOREIGN KEY (product_id, store_id) REFERENCES products (id, store_id)');
  // the referencing columns indexed, as they should be: deleting an order checks its lines, and without an
  // index each check scans order_lines (FK_INDEXES=0 measures that)
  if (process.env.FK_INDEXES !== '0') {
    await plain.query('CREATE INDEX ON order_lines (store_id, order_id)');
    await plain.query('CREATE INDEX ON order_lines (store_id, product_id)');
  }
  const seed = async (store: number, size: number) => {
    const n = split(size);
    await plain.query(`INSERT INTO stores VALUES (${store}, 'store ${store}')`);
    await plain.query(`INSERT INTO products SELECT i, ${store}, 'product ' || i, i % 1000 + 0.99 FROM generate_series(1, ${n.products}) i`);
    await plain.query(
      `INSERT INTO orders SELECT i, ${store}, timestamptz '2026-01-01' + i * interval '1 minute', 'order note ' || md5(i::text) FROM generate_series(1, ${n.orders}) i`,
    );
    await plain.query(
      `INSERT INTO order_lines SELECT i, ${store}, 1 + i % ${n.orders}, 1 + i % ${n.products}, 1 + i % 5 FROM generate_series(1, ${n.lines}) i`,
    );
  };
  // a neighbour tenant with the same keys, which nothing may touch
  await seed(1, 1000);
  const rows: Array<Record<string, string | number>> = [];
  for (const [i, size] of SIZES.entries()) {
    const store = 10 + i;
    await seed(store, size);
    await plain.query('ANALYZE');
    const dir = mkdtempSync(join(tmpdir(), 'smt-bench-lifecycle-'));
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const t0 = performance.now();
    const manifest = await lib.exportTenant(sequelize, store, { to: dir, batchSize: 1000 });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const total = manifest.tables.reduce((a, t) => a + t.rows, 0);
    rows.push({
      operation: 'exportTenant (directory, batch 1000)',
      'tenant rows': total,
      seconds: Number(seconds.toFixed(2)),
      'rows/s': Math.round(total / seconds),
      'RSS before MB': Math.round(rssBefore / 2 ** 20),
      'peak RSS MB': Math.round(peak / 2 ** 20),
    });
    rmSync(dir, { recursive: true });
  }
  // delete a 100,000-row tenant
  const doomed = 99;
  await seed(doomed, 100000);
  // as autovacuum would after a load this size: with the planner's estimates from before the load, each
  // batch's plan scans the tenant's rows (docs/lifecycle.md, "Deleting a large tenant"; ANALYZE=0 measures that)
  if (process.env.ANALYZE !== '0') await plain.query('ANALYZE');
  const t0 = performance.now();
  const deleted = await lib.deleteTenant(sequelize, doomed, { confirm: doomed, batchSize: 1000 });
  const seconds = (performance.now() - t0) / 1000;
  rows.push({
    operation: 'deleteTenant (batch 1000)',
    'tenant rows': deleted.total,
    seconds: Number(seconds.toFixed(2)),
    'rows/s': Math.round(deleted.total / seconds),
  });
  const [left] = (await plain.query('SELECT count(*)::int AS n FROM order_lines WHERE store_id = 1')) as unknown as [[{ n: number }]];
  console.log(
    `database: ${db.kind}, Node ${process.version}, foreign-key columns ${process.env.FK_INDEXES === '0' ? 'not ' : ''}indexed, ${process.env.ANALYZE === '0' ? 'no ANALYZE after the load' : 'ANALYZE after the load'}; the neighbour tenant still has ${left[0]?.n} order lines (600 seeded)`,
  );
  console.table(rows);
  console.log(JSON.stringify({ database: db.kind, node: process.version, rows }));
  await plain.close();
  await sequelize.close();
  await db.drop();
}
main();
