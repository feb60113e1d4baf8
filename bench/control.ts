// The A/A control every benchmark ratio is judged by: a second, identical baseline (plain Sequelize with
// hand-written filters, on an instance of its own) measured in the same run, interleaved with the other
// variants in an order drawn anew for every operation. Its ratio to the baseline is what the machine's noise alone produces; a
// ratio is a result only when its own run's A/A is within 1 ± TOLERANCE, and is reported as unresolved
// otherwise. Shared by run.ts (PostgreSQL) and node-cpu.ts (Node CPU alone).
import { spawnSync } from 'node:child_process';

/** How far the A/A control may stray from 1 for the run's ratios to count: ±2 %. */
export const TOLERANCE = 0.02;

/** Geometric mean (the mean of ratios). */
export function geomean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

/** 'resolved', or why not: the A/A of the same measurement, off by more than TOLERANCE. */
export function verdict(aa: number): string {
  const off = Math.abs(aa - 1);
  return off <= TOLERANCE ? 'resolved' : `unresolved (A/A off by ${(off * 100).toFixed(1)} %)`;
}

/**
 * The variants of one round in the order they run for operation `i`: a permutation drawn anew for every
 * operation and round (seeded by them, so a run can be repeated), so that no variant always runs first
 * (warm caches) or always right after the same one. A rotation that keeps the cyclic order does not do:
 * the variant after the costliest one (rls) pays its garbage collection debt every time — measured, it
 * made the A/A control 3–7 % cheaper than the baseline it follows.
 */
export function rotation<V>(variants: readonly V[], i: number, round: number): V[] {
  const order = [...variants];
  // mulberry32, seeded by (round, i)
  let seed = (Math.imul(round + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
  const next = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let k = order.length - 1; k > 0; k--) {
    const j = Math.floor(next() * (k + 1));
    [order[k], order[j]] = [order[j] as V, order[k] as V];
  }
  return order;
}

/**
 * Which context backend this run measures. cls-hooked installs a process-wide async hook as soon as a
 * namespace is created, which every variant of the process then pays for, the baseline too: measured in
 * one process with it, the baseline would carry cls-hooked's cost and the library's ratio would look
 * smaller than an application without cls-hooked sees. So the AsyncLocalStorage variants run in a process
 * without any namespace, and the cls-hooked variant in a process of its own (BENCH_CONTEXT=cls), each
 * against the baseline and the A/A control of its own process.
 */
export const CONTEXT: 'als' | 'cls' = process.env.BENCH_CONTEXT === 'cls' ? 'cls' : 'als';

/** After the AsyncLocalStorage run: the same benchmark again in a child process, measuring cls-hooked. */
export function runClsPhase(): void {
  if (CONTEXT === 'cls' || process.env.BENCH_NO_CLS === '1') return;
  const child = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1] as string], {
    env: { ...process.env, BENCH_CONTEXT: 'cls' },
    stdio: 'inherit',
  });
  if (child.status !== 0) process.exitCode = child.status ?? 1;
}
