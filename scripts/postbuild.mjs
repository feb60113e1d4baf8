// After tsc: ship the Sequelize module augmentation with the declarations, and for the main entry and
// every subpath entry (the host integrations) an ESM file that re-exports the CommonJS build — one copy
// of the module state (the tenant context) for `require` and `import` alike. This is Node's "ES module
// wrapper" answer to the dual package hazard: a second, ESM-compiled copy (what dual-build tools emit)
// would give an application that both requires and imports the library two tenant contexts, and queries
// scoped by one would not see a tenant set through the other.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

mkdirSync('dist/types', { recursive: true });
copyFileSync('types/sequelize-multitenant.d.ts', 'dist/types/sequelize-multitenant.d.ts');
const dts = readFileSync('dist/index.d.ts', 'utf8');
const ref = '/// <reference path="./types/sequelize-multitenant.d.ts" />\n';
writeFileSync('dist/index.d.ts', dts.startsWith(ref) ? dts : ref + dts);

const require = createRequire(import.meta.url);
// the entries: the package itself and its subpaths, as package.json "exports" lists them
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const entries = Object.values(pkg.exports)
  .map((target) => target?.import?.default)
  .filter(Boolean)
  .map((file) => file.replace(/^\.\/dist\//, '').replace(/\.mjs$/, ''));
if (!entries.includes('index')) throw new Error('package.json exports has no "." import entry');
for (const entry of entries) {
  let names;
  try {
    names = Object.keys(require(`../dist/${entry}.js`)).filter((n) => n !== '__esModule');
  } catch (err) {
    // a subpath whose optional peer is not installed here is still shipped (its ESM file lists its exports statically)
    if (err.code !== 'MODULE_NOT_FOUND' || String(err.message).includes(`dist/${entry}.js`)) throw err;
    names = [...readFileSync(`dist/${entry}.js`, 'utf8').matchAll(/^exports\.(\w+) = /gm)].map((m) => m[1]);
  }
  const base = entry.split('/').pop();
  const refHere = entry === 'index' ? ref : '';
  writeFileSync(`dist/${entry}.d.mts`, `${refHere}export * from './${base}.js';\n`);
  writeFileSync(`dist/${entry}.mjs`, `import cjs from './${base}.js';\nexport const { ${[...new Set(names)].join(', ')} } = cjs;\n`);
}
