// The library as applications run it: the built package (dist/, what npm installs and what `require` and
// `import` load), not its TypeScript source through tsx. tsx's module interop turns every call between two
// of the library's own modules into a getter call on the other module's exports, which the package does
// not have: measured from source, the library looked ~1 µs per operation slower than it is (an update by
// key costs ~150 µs of Node CPU on the fake connection of bench/node-cpu.ts). `npm run bench*` build first;
// run directly, a dist/ older than src/ is refused rather than measured.
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = join(__dirname, '..');
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}
let built = 0;
try {
  built = statSync(join(root, 'dist/index.js')).mtimeMs;
} catch {
  throw new Error('bench: dist/ is missing: run `npm run build` first (the benchmarks measure the built package)');
}
if (newest(join(root, 'src')) > built) throw new Error('bench: dist/ is older than src/: run `npm run build` first');

const load = createRequire(__filename);
/** The package's public API, from dist/index.js. */
export const lib = load('../dist/index.js') as typeof import('../src/index');
/** Benchmarks only (not exported from the package): switch the context backend between variants. */
export const { switchNamespaceForBenchmarks } = load('../dist/context.js') as typeof import('../src/context');
/** Internals some benchmarks measure directly, from the same build. */
export const internals = {
  hooks: load('../dist/scope/hooks.js') as typeof import('../src/scope/hooks'),
  auditor: load('../dist/audit/auditor.js') as typeof import('../src/audit/auditor'),
  evaluate: load('../dist/audit/evaluate.js') as typeof import('../src/audit/evaluate'),
  tenant: load('../dist/tenant.js') as typeof import('../src/tenant'),
  state: load('../dist/state.js') as typeof import('../src/state'),
};
