// After tsc: ship the Sequelize module augmentation with the declarations, and an ESM entry that
// re-exports the CommonJS build (one copy of the module state for `require` and `import` alike).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

mkdirSync('dist/types', { recursive: true });
copyFileSync('types/sequelize-multitenant.d.ts', 'dist/types/sequelize-multitenant.d.ts');
const dts = readFileSync('dist/index.d.ts', 'utf8');
const ref = '/// <reference path="./types/sequelize-multitenant.d.ts" />\n';
writeFileSync('dist/index.d.ts', dts.startsWith(ref) ? dts : ref + dts);
writeFileSync('dist/index.d.mts', `${ref}export * from './index.js';\n`);

const names = Object.keys(createRequire(import.meta.url)('../dist/index.js')).filter((n) => n !== '__esModule');
writeFileSync('dist/index.mjs', `import cjs from './index.js';\nexport const { ${names.join(', ')} } = cjs;\n`);
