// Side-by-side benchmark: each workload three ways in one process, interleaved — hand-written tenant
// filters on plain Sequelize (the baseline), the library with its default context (AsyncLocalStorage),
// and the library with a cls-hooked namespace. Reports operations per second and Node CPU
// microseconds per operation (process.cpuUsage), and the ratios to the baseline, as a table and JSON.
// Run: npm run bench  (ROUNDS=5 OPS=300 to change; uses the test database choice: DATABASE_URL, the
// local server, else an embedded PGlite)
import { mkdirSync, writeFileSync } from 'node:fs';
import { createNamespace } from 'cls-hooked';
import { Sequelize } from 'sequelize';
import { switchNamespaceForBenchmarks } from '../src/context';
import { multitenant } from '../src/index';
import { createTestDatabase } from '../test/helpers/db';
import { define, PRODUCTS, TENANTS, type Workload, workloadsFor } from './workloads';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const OPS = Number(process.env.OPS ?? 300);

type Variant = 'baseline' | 'library' | 'library+cls';

async function main() {
  const db = await createTestDatabase();
  const pool = { max: Math.min(db.maxConnections, 4) };
  const plain = new Sequelize(db.url, { logging: false, pool });
  const scoped = new Sequelize(db.url, { logging: false, pool });
  multitenant(scoped, { notice: false });
  const base = define(plain, false);
  const lib = define(scoped, true);
  await plain.sync({ force: true });
  await plain.query(
    `INSERT INTO bench_products (id, store_id, name, stock) SELECT i, s, 'p' || i, 100 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s`,
  );
  await plain.query(
    `INSERT INTO bench_purchases (store_id, product_id, qty) SELECT s, i, 1 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s, generate_series(1, 2)`,
  );
  const ns = createNamespace('bench');
  const workloads = workloadsFor(base, lib);

  const variants: Variant[] = ['baseline', 'library', 'library+cls'];
  const totals = new Map<string, { ms: number; cpu: number; ops: number }>();
  const fnOf = (w: Record<'baseline' | 'library', Workload>, v: Variant) => (v === 'baseline' ? w.baseline : w.library);
  // One operation of one variant, timed alone (wall and CPU), so that the variants can alternate op by op.
  const once = async (key: string, variant: Variant, fn: Workload, i: number) => {
    switchNamespaceForBenchmarks(variant === 'library+cls' ? ns : undefined);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await fn(i);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const tot = totals.get(key) ?? { ms: 0, cpu: 0, ops: 0 };
    tot.ms += ms;
    tot.cpu += cpu.user + cpu.system;
    tot.ops += 1;
    totals.set(key, tot);
  };
  // Warm up every path, then interleave op by op: the machine's drift hits the three variants alike.
  for (const [name, w] of Object.entries(workloads))
    for (const v of variants) for (let i = 0; i < 50; i++) await once(`warmup ${name}|${v}`, v, fnOf(w, v), i);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, w] of Object.entries(workloads)) {
      for (let i = 0; i < OPS; i++) {
        const k = (i + round) % variants.length;
        for (let j = 0; j < variants.length; j++) {
          const v = variants[(k + j) % variants.length] as Variant;
          await once(`${name}|${v}`, v, fnOf(w, v), round * OPS + i);
        }
      }
    }
  }
  switchNamespaceForBenchmarks(undefined);

  const rows: Array<Record<string, string | number>> = [];
  for (const name of Object.keys(workloads)) {
    const b = totals.get(`${name}|baseline`) as { ms: number; cpu: number; ops: number };
    for (const v of variants) {
      const x = totals.get(`${name}|${v}`) as { ms: number; cpu: number; ops: number };
      const opsPerSec = (x.ops / x.ms) * 1000;
      const cpuPerOp = x.cpu / x.ops;
      rows.push({
        workload: name,
        variant: v,
        'ops/s': Math.round(opsPerSec),
        'CPU µs/op': Math.round(cpuPerOp),
        'ops/s ÷ baseline': Number((opsPerSec / ((b.ops / b.ms) * 1000)).toFixed(3)),
        'CPU ÷ baseline': Number((cpuPerOp / (b.cpu / b.ops)).toFixed(3)),
      });
    }
  }
  console.log(`database: ${db.kind}, ${ROUNDS} rounds × ${OPS} operations per workload and variant, interleaved op by op`);
  console.table(rows);
  mkdirSync('bench/results', { recursive: true });
  const json = { date: new Date().toISOString(), node: process.version, database: db.kind, rounds: ROUNDS, ops: OPS, results: rows };
  writeFileSync('bench/results/latest.json', `${JSON.stringify(json, null, 2)}\n`);
  console.log(JSON.stringify(json));
  await plain.close();
  await scoped.close();
  await db.drop();
}
main();
