// The reference cannot drift from the code: every export of the package — values and types, of the
// main entry and of each subpath — has an entry of its own in docs/reference.md (a `### \`name\``
// heading), and every such heading names an export.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { MULTITENANT_OPTIONS } from '../src/plugin';

const root = join(__dirname, '..');
const reference = readFileSync(join(root, 'docs', 'reference.md'), 'utf8');
const headings = [...reference.matchAll(/^### `([^`]+)`$/gm)].map((m) => m[1] as string);

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
  test(`every export of ${entry} has its own entry in docs/reference.md`, (t) => {
    const names = exportsOf(file);
    t.true(names.length > 0);
    const missing = names.filter((name) => !headings.includes(name));
    t.deepEqual(missing, [], `no "### \`name\`" entry: ${missing.join(', ')}`);
  });
}

test('every entry of docs/reference.md names an export, once', (t) => {
  const all = new Set(Object.values(entries).flatMap(exportsOf));
  t.deepEqual(
    headings.filter((h) => !all.has(h)),
    [],
  );
  t.deepEqual(
    headings.filter((h, i) => headings.indexOf(h) !== i),
    [],
  );
});

test('the reference has a section for each subpath, and package.json exports exactly those', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const subpaths = Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json');
  t.deepEqual(
    subpaths.map((k) => `sequelize-multitenant${k.slice(1)}`).sort(),
    Object.keys(entries)
      .filter((e) => e.includes('/'))
      .sort(),
  );
  for (const sub of subpaths) t.true(reference.includes(`\n## \`sequelize-multitenant/${sub.slice(2)}\``), sub);
});

test('the options and errors tables are complete', (t) => {
  const options = Object.keys(MULTITENANT_OPTIONS);
  t.true(options.length >= 6);
  const errors = exportsOf('src/errors.ts').filter((n) => n.endsWith('Error'));
  for (const [file, text] of [
    ['README.md', readFileSync(join(root, 'README.md'), 'utf8')],
    ['docs/reference.md', reference],
  ] as const) {
    const section = (title: string) => text.slice(text.indexOf(`## ${title}`), text.indexOf('\n## ', text.indexOf(`## ${title}`) + 1));
    for (const option of options) t.regex(section('Options'), new RegExp(`^\\| \`${option}\` `, 'm'), `${file}: option ${option}`);
    for (const error of errors) t.regex(section('Errors'), new RegExp(`^\\| \`${error}\``, 'm'), `${file}: error ${error}`);
  }
});
