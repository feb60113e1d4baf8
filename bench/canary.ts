// The install-time canary's cost: multitenant() in fresh processes (cold: the first SQL any model builds
// in the process) and again on a second Sequelize instance in the same process (warm). It runs once per
// multitenant() call, never per query. Run: npm run bench:canary [-- --processes 10]
import { execFileSync } from 'node:child_process';

const child = process.argv.includes('--child');

async function measure(): Promise<void> {
  const { Sequelize } = await import('sequelize');
  const { internals, lib } = await import('./library');
  const { multitenant } = lib;
  const { stateOf } = internals.state;
  const url = 'postgres://u@127.0.0.1:1/none';
  const once = () => {
    const s = new Sequelize(url, { logging: false });
    const started = performance.now();
    multitenant(s);
    const total = performance.now() - started;
    return { total, canary: stateOf(s)?.canary?.ms ?? Number.NaN };
  };
  const cold = once();
  const warm = [once(), once(), once(), once(), once()].sort((a, b) => a.total - b.total)[2] as typeof cold;
  process.stdout.write(`${JSON.stringify({ cold, warm })}\n`);
}

function main(): void {
  const i = process.argv.indexOf('--processes');
  const n = i > 0 ? Number(process.argv[i + 1]) : 10;
  const runs: { cold: { total: number; canary: number }; warm: { total: number; canary: number } }[] = [];
  for (let k = 0; k < n; k++) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', process.argv[1] as string, '--child'], { encoding: 'utf8' });
    runs.push(JSON.parse(out.trim().split('\n').at(-1) as string));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const f = (x: number) => `${x.toFixed(1)} ms`;
  const row = (label: string, pick: (r: (typeof runs)[number]) => { total: number; canary: number }) => {
    const total = median(runs.map((r) => pick(r).total));
    const canary = median(runs.map((r) => pick(r).canary));
    console.log(`${label}: multitenant() ${f(total)}, of which the canary ${f(canary)} (${((canary / total) * 100).toFixed(0)} %)`);
  };
  console.log(`install-time canary, median of ${n} fresh processes (Node ${process.version})`);
  row('first install in a process (cold)', (r) => r.cold);
  row('another Sequelize instance (warm)', (r) => r.warm);
}

if (child) void measure();
else main();
