// The reference cannot drift from the code: every export of the package — values and types, of the
// main entry and of each subpath — is named in the README's API section.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';

const root = join(__dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const api = readme.slice(readme.indexOf('## API'), readme.indexOf('\n## ', readme.indexOf('## API') + 1));

/** The names a module exports, read from its source: `export { a, b }`, `export type { T }`, `export function f`, `export const c`. */
function exportsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const names = new Set<string>();
  for (const m of text.matchAll(/^export (?:type )?\{([^}]*)\}/gm)) {
    for (const part of (m[1] as string).split(',')) {
      const name = part
        .trim()
        .replace(/^type /, '')
        .split(/\s+as\s+/)
        .pop()
        ?.trim();
      if (name) names.add(name);
    }
  }
  for (const m of text.matchAll(/^export (?:async )?(?:function|const|class|interface|type) ([A-Za-z_$][\w$]*)/gm))
    names.add(m[1] as string);
  return [...names].sort();
}

const entries: Record<string, string> = {
  'sequelize-multitenant': 'src/index.ts',
  'sequelize-multitenant/fastify': 'src/hosts/fastify.ts',
  'sequelize-multitenant/koa': 'src/hosts/koa.ts',
  'sequelize-multitenant/nestjs': 'src/hosts/nestjs.ts',
  'sequelize-multitenant/bullmq': 'src/hosts/bullmq.ts',
};

for (const [entry, file] of Object.entries(entries)) {
  test(`every export of ${entry} is named in the README's API section`, (t) => {
    const names = exportsOf(file);
    t.true(names.length > 0);
    const missing = names.filter((name) => !api.includes(name));
    t.deepEqual(missing, [], `not in the API section: ${missing.join(', ')}`);
  });
}

test('the API section names each subpath, and package.json exports exactly those', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const subpaths = Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json');
  t.deepEqual(
    subpaths.map((k) => `sequelize-multitenant${k.slice(1)}`).sort(),
    Object.keys(entries)
      .filter((e) => e.includes('/'))
      .sort(),
  );
  for (const sub of subpaths) t.true(api.includes(`/${sub.slice(2)}`), sub);
});
