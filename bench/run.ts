// Side-by-side benchmark: each workload four ways in one process, interleaved — hand-written tenant
// filters on plain Sequelize (the baseline), the library with its default context (AsyncLocalStorage),
// the library with a cls-hooked namespace, and the library with row-level security (`rls: true`,
// connected as a role the policies apply to). Reports operations per second, Node CPU microseconds per
// operation (process.cpuUsage), statements on the wire per operation (the library's SETs included),
// and the ratios to the baseline and to the library without rls, as a table and JSON. Every ratio is
// judged by the A/A control of the same run (bench/control.ts): a second plain instance doing the
// baseline's work, in the shuffled order like every variant; ratios whose A/A is off by more than 2 % are
// reported as unresolved.
// Run: npm run bench  (ROUNDS=5 OPS=300 to change; uses the test database choice: DATABASE_URL, the
// local server, CITUS_URL with MULTITENANT_TEST_DB=citus, else an embedded PGlite)
import { mkdirSync, writeFileSync } from 'node:fs';
import { createNamespace } from 'cls-hooked';
import { type Options, Sequelize } from 'sequelize';
import { createRlsDatabase, watchingWire } from '../test/helpers/rls';
import { CONTEXT, geomean, rotation, runClsPhase, verdict } from './control';
import { lib, switchNamespaceForBenchmarks } from './library';
import { define, PRODUCTS, TENANTS, type Workload, workloadsFor } from './workloads';

const { multitenant } = lib;

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const OPS = Number(process.env.OPS ?? 300);

type Variant = 'baseline' | 'A/A control' | 'library' | 'library+cls' | 'library+rls';

/** Counts the statements each variant's connections send (the library's own SETs included). */
const wire = new Map<Variant, number>();
const counting = (variant: Variant, extra: Partial<Options> = {}): Partial<Options> =>
  watchingWire(extra, () => wire.set(variant, (wire.get(variant) ?? 0) + 1));

async function main() {
  // the tables belong to a role that is neither a superuser nor BYPASSRLS: the policies apply to the
  // rls variant; the others connect as the superuser, which PostgreSQL lets past every policy (rls off)
  const db = await createRlsDatabase();
  const embedded = db.kind === 'embedded';
  const pool = { max: Math.min(db.maxConnections, 4) };
  const plain = new Sequelize(db.adminUrl, { logging: false, pool, ...counting('baseline') });
  const control = new Sequelize(db.adminUrl, { logging: false, pool, ...counting('A/A control') });
  const scoped = new Sequelize(db.adminUrl, { logging: false, pool, ...counting('library') });
  const withRls = new Sequelize(db.url, { logging: false, pool, ...counting('library+rls', db.connectOptions()) });
  multitenant(scoped, { notice: false });
  multitenant(withRls, { notice: false, rls: true });
  const base = define(plain, false);
  const again = define(control, false);
  const lib = define(scoped, true);
  const rls = define(withRls, true);
  if (embedded) {
    // PGlite: one session for all; the role is set per statement batch below (RLS cannot be compared there)
    console.log('embedded PGlite: one session shared by every connection, no rls variant');
  }
  await (embedded ? plain.sync({ force: true }) : withRls.sync({ force: true }));
  await plain.query(
    `INSERT INTO bench_products (id, store_id, name, stock) SELECT i, s, 'p' || i, 100 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s`,
  );
  await plain.query(
    `INSERT INTO bench_purchases (store_id, product_id, qty) SELECT s, i, 1 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s, generate_series(1, 2)`,
  );
  const ns = CONTEXT === 'cls' ? createNamespace('bench') : undefined;
  const workloads = workloadsFor(base, lib, rls, again);

  const variants: Variant[] =
    CONTEXT === 'cls'
      ? ['baseline', 'A/A control', 'library+cls']
      : embedded
        ? ['baseline', 'A/A control', 'library']
        : ['baseline', 'A/A control', 'library', 'library+rls'];
  const reference: Variant = CONTEXT === 'cls' ? 'library+cls' : 'library';
  const totals = new Map<string, { ms: number; cpu: number; ops: number }>();
  const fnOf = (w: Record<'baseline' | 'control' | 'library' | 'rls', Workload>, v: Variant) =>
    v === 'baseline' ? w.baseline : v === 'A/A control' ? w.control : v === 'library+rls' ? w.rls : w.library;
  const sent = new Map<string, number>();
  // One operation of one variant, timed alone (wall and CPU), so that the variants can alternate op by op.
  const once = async (key: string, variant: Variant, fn: Workload, i: number) => {
    switchNamespaceForBenchmarks(variant === 'library+cls' ? ns : undefined);
    const counter: Variant = variant === 'library+cls' ? 'library' : variant; // one Sequelize for both
    const w0 = wire.get(counter) ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await fn(i);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    sent.set(key, (sent.get(key) ?? 0) + (wire.get(counter) ?? 0) - w0);
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
        for (const v of rotation(variants, i, round)) await once(`${name}|${v}`, v, fnOf(w, v), round * OPS + i);
      }
    }
  }
  switchNamespaceForBenchmarks(undefined);

  const rows: Array<Record<string, string | number>> = [];
  type Total = { ms: number; cpu: number; ops: number };
  const total = (name: string, v: Variant) => totals.get(`${name}|${v}`) as Total;
  const opsPerSec = (x: Total) => (x.ops / x.ms) * 1000;
  const cpuPerOp = (x: Total) => x.cpu / x.ops;
  for (const name of Object.keys(workloads)) {
    const b = total(name, 'baseline');
    const l = total(name, reference);
    const aa = total(name, 'A/A control');
    // the A/A of this workload in this run, for both measures: what noise alone gives
    const aaCpu = cpuPerOp(aa) / cpuPerOp(b);
    const aaOps = opsPerSec(aa) / opsPerSec(b);
    for (const v of variants) {
      const x = total(name, v);
      rows.push({
        workload: name,
        variant: v,
        'ops/s': Math.round(opsPerSec(x)),
        'CPU µs/op': Math.round(cpuPerOp(x)),
        'ops/s ÷ baseline': Number((opsPerSec(x) / opsPerSec(b)).toFixed(3)),
        'CPU ÷ baseline': Number((cpuPerOp(x) / cpuPerOp(b)).toFixed(3)),
        'A/A CPU': Number(aaCpu.toFixed(3)),
        'A/A ops/s': Number(aaOps.toFixed(3)),
        verdict: v === 'baseline' || v === 'A/A control' ? '' : verdict(Math.abs(aaCpu - 1) > Math.abs(aaOps - 1) ? aaCpu : aaOps),
        [`CPU ÷ ${reference}`]: Number((cpuPerOp(x) / cpuPerOp(l)).toFixed(3)),
        [`ops/s ÷ ${reference}`]: Number((opsPerSec(x) / opsPerSec(l)).toFixed(3)),
        'statements/op': Number(((sent.get(`${name}|${v}`) ?? 0) / x.ops).toFixed(2)),
      });
    }
  }
  const names = Object.keys(workloads);
  const aaMean = geomean(names.map((name) => cpuPerOp(total(name, 'A/A control')) / cpuPerOp(total(name, 'baseline'))));
  const summary = variants
    .filter((v) => v !== 'baseline' && v !== 'A/A control')
    .map((v) => ({
      variant: v,
      'geomean CPU ÷ baseline': Number(
        geomean(names.map((name) => cpuPerOp(total(name, v)) / cpuPerOp(total(name, 'baseline')))).toFixed(3),
      ),
      'geomean ops/s ÷ baseline': Number(
        geomean(names.map((name) => opsPerSec(total(name, v)) / opsPerSec(total(name, 'baseline')))).toFixed(3),
      ),
      'geomean A/A CPU': Number(aaMean.toFixed(3)),
      verdict: verdict(aaMean),
    }));
  console.log(
    `database: ${db.kind}, context ${CONTEXT === 'cls' ? 'cls-hooked (a process of its own)' : 'AsyncLocalStorage'}, pool ${pool.max}, ${ROUNDS} rounds × ${OPS} operations per workload and variant, interleaved op by op; statements/op counts what went over the wire (the library's SETs included)`,
  );
  console.table(rows);
  console.table(summary);
  mkdirSync('bench/results', { recursive: true });
  const json = {
    date: new Date().toISOString(),
    node: process.version,
    database: db.kind,
    context: CONTEXT,
    rounds: ROUNDS,
    ops: OPS,
    results: rows,
    summary,
  };
  writeFileSync(`bench/results/latest${CONTEXT === 'cls' ? '-cls' : ''}.json`, `${JSON.stringify(json, null, 2)}\n`);
  console.log(JSON.stringify(json));
  await plain.close();
  await control.close();
  await scoped.close();
  await withRls.close();
  await db.drop();
  runClsPhase();
}
main();
