// Node CPU only: the same workloads with the database replaced by an in-process fake connection, so
// that what is measured is Sequelize's and the library's own work per operation, free of network and
// server noise. Used to find and remove the library's costs (`npm run bench:cpu`). Every ratio is judged by
// the A/A control of the same run (bench/control.ts): a second plain instance doing the baseline's work.
import { performance } from 'node:perf_hooks';
import { createNamespace } from 'cls-hooked';
import { CONTEXT, geomean, rotation, runClsPhase, verdict } from './control';
import { lib, switchNamespaceForBenchmarks } from './library';
import { offline } from './offline';
import { define, workloadsFor } from './workloads';

const { multitenant } = lib;

const OPS = Number(process.env.OPS ?? 20000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

async function main() {
  const plain = offline();
  const control = offline();
  const scoped = offline();
  multitenant(scoped, { notice: false });
  // VISIBILITY=1: one more variant, the library with the tenant on every log line and in every statement's
  // SQL (logTenant, sqlComment) — what turning them on costs, beside the library with them off
  const visible = process.env.VISIBILITY === '1' ? offline() : undefined;
  if (visible) multitenant(visible, { notice: false, logTenant: true, sqlComment: true });
  const all = workloadsFor(define(plain, false), define(scoped, true), undefined, define(control, false));
  const shown = visible ? workloadsFor(define(plain, false), define(visible, true)) : undefined;
  const only = process.env.ONLY;
  const workloads = Object.fromEntries(Object.entries(all).filter(([name]) => !only || name.includes(only)));
  const ns = CONTEXT === 'cls' ? createNamespace('bench-cpu') : undefined;
  const libraries =
    CONTEXT === 'cls' ? (['library+cls'] as const) : visible ? (['library', 'library+visibility'] as const) : (['library'] as const);
  const variants = ['baseline', 'A/A control', ...libraries] as const;
  const cpu = new Map<string, number>();
  // Variants alternate op by op (in an order drawn anew each op), each op timed alone: drift, GC and JIT
  // effects fall on all variants alike. Round 0 warms up.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [name, w] of Object.entries(workloads)) {
      for (let i = 0; i < OPS / 10; i++) {
        for (const v of rotation(variants, i, round)) {
          switchNamespaceForBenchmarks(v === 'library+cls' ? ns : undefined);
          const fn =
            v === 'baseline'
              ? w.baseline
              : v === 'A/A control'
                ? w.control
                : v === 'library+visibility'
                  ? (shown?.[name]?.library as typeof w.library)
                  : w.library;
          const c0 = process.cpuUsage();
          await fn(i);
          const c = process.cpuUsage(c0);
          if (round > 0) cpu.set(`${name}|${v}`, (cpu.get(`${name}|${v}`) ?? 0) + c.user + c.system);
        }
      }
    }
  }
  switchNamespaceForBenchmarks(undefined);
  const n = (OPS / 10) * ROUNDS;
  const per = (name: string, v: string) => (cpu.get(`${name}|${v}`) as number) / n;
  const rows = Object.keys(workloads).flatMap((name) => {
    const b = per(name, 'baseline');
    const aa = per(name, 'A/A control') / b;
    return variants.map((v) => ({
      workload: name,
      variant: v,
      'Node CPU µs/op': Number(per(name, v).toFixed(1)),
      'CPU ÷ baseline': Number((per(name, v) / b).toFixed(3)),
      'A/A': Number(aa.toFixed(3)),
      verdict: v === 'baseline' || v === 'A/A control' ? '' : verdict(aa),
    }));
  });
  const names = Object.keys(workloads);
  const aaMean = geomean(names.map((name) => per(name, 'A/A control') / per(name, 'baseline')));
  const summary = libraries.map((v) => ({
    variant: v,
    'geomean CPU ÷ baseline': Number(geomean(names.map((name) => per(name, v) / per(name, 'baseline'))).toFixed(3)),
    'geomean A/A': Number(aaMean.toFixed(3)),
    verdict: verdict(aaMean),
  }));
  console.log(
    `Node CPU per operation, fake connection, context ${CONTEXT === 'cls' ? 'cls-hooked (a process of its own)' : 'AsyncLocalStorage'}, ${n} operations per workload and variant, in an order drawn anew every operation (${performance.now().toFixed(0)} ms)`,
  );
  console.table(rows);
  console.table(summary);
  console.log(JSON.stringify({ context: CONTEXT, rows, summary }));
  runClsPhase();
}
main();
