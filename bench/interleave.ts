// The measurement bench/context.ts and bench/hooks.ts share: several ways of doing one operation run
// interleaved op by op (each way first in turn), Node CPU (process.cpuUsage) summed per way per round,
// after two warm-up rounds; ratios are taken per round and their median reported, so that the machine's
// drift between rounds cancels out.

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** CPU µs per operation of each way, per round (warm-up rounds left out). */
export async function interleavedCpu<K extends string>(
  ways: Record<K, (i: number) => Promise<unknown>>,
  rounds: number,
  ops: number,
): Promise<Array<Record<K, number>>> {
  const names = Object.keys(ways) as K[];
  const perRound: Array<Record<K, number>> = [];
  for (let round = -2; round < rounds; round++) {
    const cpu = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
    for (let i = 0; i < ops; i++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(i + j) % names.length] as K;
        const c0 = process.cpuUsage();
        await ways[name](i);
        const c = process.cpuUsage(c0);
        cpu[name] += c.user + c.system;
      }
    }
    if (round >= 0) perRound.push(Object.fromEntries(names.map((n) => [n, cpu[n] / ops])) as Record<K, number>);
  }
  return perRound;
}

/** The median over rounds of `a ÷ b`. */
export const medianRatio = <K extends string>(perRound: Array<Record<K, number>>, a: K, b: K): number =>
  median(perRound.map((r) => r[a] / r[b]));
