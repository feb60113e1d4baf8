// The README is what npm shows: every link in it must work on the registry's page, where only absolute
// links do. Links go to the repository package.json names (repository, homepage, bugs agree), at files
// that exist; the docs ship in the package, so their own relative links (docs/ to docs/) work there too.
// An anchor must name a heading of its target.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { documents } from './helpers/docs';

const root = join(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  repository: { type: string; url: string };
  homepage: string;
  bugs: { url: string };
  files: string[];
};
const repo = /^git\+(https:\/\/github\.com\/[^/]+\/[^/.]+)\.git$/.exec(pkg.repository.url)?.[1] as string;

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
function anchorsOf(file: string): Set<string> {
  const text = readFileSync(join(root, file), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] as string)));
}
function linksOf(file: string): { line: number; target: string }[] {
  const text = readFileSync(join(root, file), 'utf8').replace(/^```[\s\S]*?^```/gm, (b) => b.replace(/[^\n]/g, ' '));
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => ({
    line: text.slice(0, m.index).split('\n').length,
    target: m[1] as string,
  }));
}
/** The file and anchor a link reaches, relative to the checkout; undefined for a link outside the repository. */
function resolveTarget(from: string, target: string): { file: string; anchor?: string } | undefined {
  const [path, anchor] = target.split('#') as [string, string | undefined];
  if (path === '') return { file: from, anchor };
  if (/^https?:/.test(path)) {
    const m = new RegExp(`^${repo.replace(/\./g, '\\.')}/(?:blob|tree)/main/(.+)$`).exec(path);
    return m ? { file: m[1] as string, anchor } : undefined;
  }
  return { file: join(from, '..', path), anchor };
}

test('package.json names the repository, its home page and its issues, all one repository', (t) => {
  t.truthy(repo, pkg.repository.url);
  t.is(pkg.repository.type, 'git');
  t.is(pkg.homepage, `${repo}#readme`);
  t.is(pkg.bugs.url, `${repo}/issues`);
});

test('every link of the README is absolute or an anchor of its own, and reaches a file and heading that exist', (t) => {
  const links = linksOf('README.md');
  t.true(links.length > 20);
  for (const { line, target } of links) {
    const at = `README.md:${line}: ${target}`;
    t.true(target.startsWith('#') || target.startsWith('https://'), `${at}: relative links are dead on the npm page`);
    if (target.startsWith('https://github.com/') && !target.startsWith(`${repo}/`) && target !== repo) {
      t.fail(`${at}: a GitHub link outside package.json's repository (${repo})`);
    }
    const reached = resolveTarget('README.md', target);
    if (!reached) continue;
    t.true(existsSync(join(root, reached.file)), `${at}: no ${reached.file} in the repository`);
    if (reached.anchor && reached.file.endsWith('.md'))
      t.true(anchorsOf(reached.file).has(reached.anchor), `${at}: no heading #${reached.anchor}`);
  }
});

test('the docs link only to docs and to the repository, and each link reaches a heading that exists', (t) => {
  for (const file of documents().filter((f) => f.startsWith('docs/'))) {
    for (const { line, target } of linksOf(file)) {
      const at = `${file}:${line}: ${target}`;
      const reached = resolveTarget(file, target);
      if (/^https?:/.test(target) && !reached) continue;
      if (!reached) return t.fail(at);
      // shipped in the package with the docs: a relative link must stay inside docs/
      if (!/^https?:/.test(target)) t.true(reached.file.startsWith('docs/'), `${at}: leaves docs/, which is what the package ships`);
      t.true(existsSync(join(root, reached.file)), `${at}: no ${reached.file}`);
      if (reached.anchor) t.true(anchorsOf(reached.file).has(reached.anchor), `${at}: no heading #${reached.anchor}`);
    }
  }
});

test('the package ships the docs the README names, and nothing of the tests or sources', (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
  for (const doc of documents()) t.true(files.includes(doc), `${doc} is packed`);
  t.true(files.includes('LICENSE') && files.includes('CHANGELOG.md') && files.includes('dist/index.js'));
  t.deepEqual(
    files.filter((f) => /^(test|src|scratch|bench|examples|\.ci)\//.test(f)),
    [],
  );
});
