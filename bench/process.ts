// What an application's process pays, which a benchmark inside one process cannot show. Once any
// AsyncLocalStorage is used, Node 20 runs a hook on every promise of the process — and multitenant()
// uses the library's at install (its canary builds SQL under a tenant): a baseline measured in the same
// process as the library pays that too, and the library's in-process ratio (bench/run.ts, node-cpu.ts)
// leaves it out. Here every way runs in processes of its own, persistent, and the processes take turns
// batch by batch in an order drawn anew every round (bench/control.ts), so that the machine's drift
// falls on all alike:
//   - plain: hand-written tenant filters on plain Sequelize; the library is not installed anywhere in
//     the process and no AsyncLocalStorage is used (its module is loaded: inert until multitenant()).
//   - plain + AsyncLocalStorage: the same, in a process where an AsyncLocalStorage of its own was used once
//     (as an application that uses one for anything else): Node's hook alone.
//   - library: the same work left to the library under withTenant.
// Each way runs in REPLICAS processes (a process's own JIT and memory placement differ by a few per cent
// from another's): a way's figure is the mean over its processes, and the A/A compares the plain
// processes among themselves (even against odd).
// Run: npm run bench:process  (fake connection: bench/offline.ts)
//      DB=pg npm run bench:process  (the test database choice: DATABASE_URL, the local server, ...)
//      REPLICAS=4 ROUNDS=40 BATCH=100 to change; ONLY=findByPk for one workload
import { AsyncLocalStorage } from 'node:async_hooks';
import { type ChildProcess, fork } from 'node:child_process';
import { Sequelize } from 'sequelize';
import { geomean, rotation, verdict } from './control';

const REPLICAS = Number(process.env.REPLICAS ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 40);
const BATCH = Number(process.env.BATCH ?? 100);
const ON_PG = process.env.DB === 'pg';

type Kind = 'plain' | 'plain + AsyncLocalStorage' | 'library';
const KINDS: readonly Kind[] = ['plain', 'plain + AsyncLocalStorage', 'library'];

/** One process of one kind: answers `[workload, n]` with the Node CPU µs its n operations took. */
async function child(kind: Kind, url: string | undefined): Promise<void> {
  const { lib } = await import('./library');
  const { offline } = await import('./offline');
  const { define, workloadsFor } = await import('./workloads');
  // (connections kept open while the other processes take their turns: no reconnect is measured)
  const connect = () => (url ? new Sequelize(url, { logging: false, pool: { max: 2, idle: 3_600_000 } }) : offline());
  const sequelize = connect();
  if (kind === 'library') lib.multitenant(sequelize, { notice: false });
  if (kind === 'plain + AsyncLocalStorage') await new AsyncLocalStorage<number>().run(1, async () => undefined);
  const models = define(sequelize, kind === 'library');
  const workloads = workloadsFor(models, models);
  let i = 0;
  process.on('message', async ([name, n]: [string, number]) => {
    const w = workloads[name];
    if (!w) throw new Error(`no workload ${name}`);
    const fn = kind === 'library' ? w.library : w.baseline;
    const c0 = process.cpuUsage();
    for (let k = 0; k < n; k++) await fn(i++);
    const c = process.cpuUsage(c0);
    process.send?.(c.user + c.system);
  });
  process.send?.(Object.keys(workloads));
}

interface Process {
  kind: Kind;
  proc: ChildProcess;
  cpu: Map<string, number>;
  ops: Map<string, number>;
}

function ask(p: Process, name: string, n: number): Promise<number> {
  return new Promise((resolve) => {
    p.proc.once('message', (m) => resolve(m as number));
    p.proc.send([name, n]);
  });
}

async function main(): Promise<void> {
  let url: string | undefined;
  let drop = async (): Promise<void> => undefined;
  if (ON_PG) {
    const { createTestDatabase } = await import('../test/helpers/db');
    const { define, PRODUCTS, TENANTS } = await import('./workloads');
    const db = await createTestDatabase();
    url = db.url;
    drop = () => db.drop();
    const s = new Sequelize(db.url, { logging: false });
    define(s, false);
    await s.sync({ force: true });
    await s.query(
      `INSERT INTO bench_products (id, store_id, name, stock) SELECT i, s, 'p' || i, 100 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s`,
    );
    await s.query(
      `INSERT INTO bench_purchases (store_id, product_id, qty) SELECT s, i, 1 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s, generate_series(1, 2)`,
    );
    await s.close();
  }
  const processes: Process[] = KINDS.flatMap((kind) =>
    Array.from({ length: REPLICAS }, () => ({
      kind,
      proc: fork(__filename, ['--child', kind], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_URL: url ?? '' } }),
      cpu: new Map<string, number>(),
      ops: new Map<string, number>(),
    })),
  );
  const lists = await Promise.all(
    processes.map((p) => new Promise<string[]>((resolve) => p.proc.once('message', (m) => resolve(m as string[])))),
  );
  const only = process.env.ONLY;
  const names = (lists[0] ?? []).filter((name) => !only || name.includes(only));
  // warm-up: every path of every process
  for (const p of processes) for (const name of names) await ask(p, name, BATCH * 3);
  const order = processes.map((_, j) => j);
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      for (const j of rotation(order, round, names.indexOf(name))) {
        const p = processes[j] as Process;
        const cpu = await ask(p, name, BATCH);
        p.cpu.set(name, (p.cpu.get(name) ?? 0) + cpu);
        p.ops.set(name, (p.ops.get(name) ?? 0) + BATCH);
      }
    }
  }
  for (const p of processes) p.proc.kill();
  await drop();

  const perOp = (p: Process, name: string) => (p.cpu.get(name) as number) / (p.ops.get(name) as number);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const of = (kind: Kind, name: string) => processes.filter((p) => p.kind === kind).map((p) => perOp(p, name));
  const rows = names.map((name) => {
    const plain = of('plain', name);
    const base = mean(plain);
    const aa = mean(plain.filter((_, i) => i % 2 === 1)) / mean(plain.filter((_, i) => i % 2 === 0));
    return {
      workload: name,
      'plain µs/op': Number(base.toFixed(1)),
      'plain + AsyncLocalStorage ÷ plain': Number((mean(of('plain + AsyncLocalStorage', name)) / base).toFixed(3)),
      'library ÷ plain': Number((mean(of('library', name)) / base).toFixed(3)),
      'A/A (plain processes, odd ÷ even)': Number(aa.toFixed(3)),
      verdict: verdict(aa),
      'per process (plain; library)': `${plain.map((x) => x.toFixed(0)).join(' ')}; ${of('library', name)
        .map((x) => x.toFixed(0))
        .join(' ')}`,
    };
  });
  const aaMean = geomean(rows.map((r) => r['A/A (plain processes, odd ÷ even)']));
  console.log(
    `Node CPU per operation, each way in ${REPLICAS} processes of its own taking turns batch by batch (${ROUNDS} rounds × ${BATCH} operations per workload and process), ${ON_PG ? 'PostgreSQL' : 'fake connection'}, Node ${process.version}`,
  );
  console.table(rows);
  console.table([
    {
      'geomean plain + AsyncLocalStorage ÷ plain': Number(geomean(rows.map((r) => r['plain + AsyncLocalStorage ÷ plain'])).toFixed(3)),
      'geomean library ÷ plain': Number(geomean(rows.map((r) => r['library ÷ plain'])).toFixed(3)),
      'geomean A/A': Number(aaMean.toFixed(3)),
      verdict: verdict(aaMean),
    },
  ]);
  console.log(
    JSON.stringify({ node: process.version, database: ON_PG ? 'pg' : 'fake', replicas: REPLICAS, rounds: ROUNDS, batch: BATCH, rows }),
  );
}

const at = process.argv.indexOf('--child');
if (at > 0) void child(process.argv[at + 1] as Kind, process.env.BENCH_URL || undefined);
else void main();
