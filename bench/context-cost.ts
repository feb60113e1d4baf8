// What AsyncLocalStorage itself costs on Node 20, which a benchmark in one process cannot show: once any
// AsyncLocalStorage is used, Node runs a hook on every promise of the process, so a baseline measured
// beside the library pays it too. Here the same plain-Sequelize work (the baseline of bench/workloads.ts,
// hand-written filters, on the fake connection of bench/offline.ts) runs in fresh processes, alternately
// with the library's AsyncLocalStorage used once at start (`withTenant`, as the first request of an
// application does) and never used; the A/A is the processes without it compared among themselves.
// Both kinds load the library and install it on an instance of their own: only the context differs.
// (Switching the hooks off and on inside one process is no measurement: it disturbs V8's compiled code.)
// Run: npm run bench:context-cost  (PROCESSES=8 OPS=20000 to change)
import { execFileSync } from 'node:child_process';
import { geomean, verdict } from './control';
import { median } from './interleave';
import { lib } from './library';
import { offline } from './offline';
import { define, workloadsFor } from './workloads';

const OPS = Number(process.env.OPS ?? 20000);
const PROCESSES = Number(process.env.PROCESSES ?? 8);

async function child(withContext: boolean): Promise<void> {
  lib.multitenant(offline(), { notice: false });
  if (withContext) await lib.withTenant(1, async () => undefined);
  const plain = define(offline(), false);
  const workloads = workloadsFor(plain, plain);
  const result: Record<string, number> = {};
  for (const [name, w] of Object.entries(workloads)) {
    for (let i = 0; i < OPS / 4; i++) await w.baseline(i);
    const c0 = process.cpuUsage();
    for (let i = 0; i < OPS; i++) await w.baseline(i);
    const c = process.cpuUsage(c0);
    result[name] = (c.user + c.system) / OPS;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function main(): void {
  const run = (mode: 'als' | 'plain') =>
    JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', process.argv[1] as string, '--child', mode], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .at(-1) as string,
    ) as Record<string, number>;
  const runs: Record<'als' | 'plain', Array<Record<string, number>>> = { als: [], plain: [] };
  for (let k = 0; k < PROCESSES; k++) {
    for (const mode of k % 2 ? (['als', 'plain'] as const) : (['plain', 'als'] as const)) runs[mode].push(run(mode));
  }
  const names = Object.keys(runs.plain[0] as object);
  const med = (xs: Array<Record<string, number>>, name: string) => median(xs.map((x) => x[name] as number));
  const even = runs.plain.filter((_, i) => i % 2 === 0);
  const odd = runs.plain.filter((_, i) => i % 2 === 1);
  const rows = names.map((name) => ({
    workload: name,
    'plain Sequelize µs/op': Number(med(runs.plain, name).toFixed(1)),
    'with AsyncLocalStorage in use µs/op': Number(med(runs.als, name).toFixed(1)),
    'with ÷ without': Number((med(runs.als, name) / med(runs.plain, name)).toFixed(3)),
    'A/A (processes without, odd ÷ even)': Number((med(odd, name) / med(even, name)).toFixed(3)),
  }));
  const aa = geomean(rows.map((r) => r['A/A (processes without, odd ÷ even)']));
  console.log(
    `AsyncLocalStorage's process-wide cost on plain Sequelize, Node ${process.version}, fake connection, median of ${PROCESSES} fresh processes each, ${OPS} operations per workload`,
  );
  console.table(rows);
  console.table([
    {
      'geomean with ÷ without': Number(geomean(rows.map((r) => r['with ÷ without'])).toFixed(3)),
      'geomean A/A': Number(aa.toFixed(3)),
      verdict: verdict(aa),
    },
  ]);
}

const i = process.argv.indexOf('--child');
if (i > 0) void child(process.argv[i + 1] === 'als');
else main();
