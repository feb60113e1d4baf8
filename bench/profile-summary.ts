// Prints the self time of the library's functions (dist/, the built package) in the newest .cpuprofile of bench/results.
import { readdirSync, readFileSync, statSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}
const dir = 'bench/results';
// tsx's loader runs on a thread of its own, which writes a profile too: take the largest of the newest run.
const file = readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .map((f) => ({ f, size: statSync(`${dir}/${f}`).size }))
  .sort((a, b) => b.size - a.size)[0]?.f;
if (!file) throw new Error('no .cpuprofile in bench/results');
const profile = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
// Busy samples only: the process mostly waits for the database.
const idle = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + n.hitCount, 0);
const total = profile.samples.length - idle;
const self = new Map<string, number>();
let library = 0;
for (const n of profile.nodes) {
  // the library as built (bench/library.ts loads dist/): its files, not those of dependencies
  const url = n.callFrame.url;
  const where =
    url.includes('/dist/') && !url.includes('node_modules')
      ? `${n.callFrame.functionName || '(anonymous)'} ${url.split('/dist/')[1]}:${n.callFrame.lineNumber + 1}`
      : undefined;
  if (!where) continue;
  self.set(where, (self.get(where) ?? 0) + n.hitCount);
  library += n.hitCount;
}
console.log(`${file}: ${total} busy samples, ${library} (${((library / total) * 100).toFixed(2)} %) in the library's own code`);
for (const [name, hits] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15))
  console.log(`${((hits / total) * 100).toFixed(2).padStart(6)} %  ${name}`);
