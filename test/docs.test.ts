// The docs cannot rot: every TypeScript block of the README and of docs/ is type-checked against the
// built package (resolved by its own name, through package.json "exports", as an application resolves
// it) with TypeScript 5 and 7; every JavaScript block is run (the quick start, against a fresh test
// database, must print what the README says it prints) or at least parsed by Node.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { createTestDatabase } from './helpers/db';
import { type Block, blocksOf, CHECKED, documents } from './helpers/docs';

const run = promisify(execFile);
const root = join(__dirname, '..');
// Inside the package directory: `sequelize-multitenant` resolves to the package itself (self-reference).
const dir = join(root, '.docs-check', `run-${process.pid}`);
const blocks = documents().flatMap(blocksOf);
const isJs = (b: Block) => b.lang === 'js' || b.lang === 'javascript';
const checked = blocks.filter((b) => CHECKED.has(b.lang) && !isJs(b) && b.mark?.kind !== 'skip');
const scripts = blocks.filter((b) => isJs(b) && b.mark?.kind !== 'skip');

/** A block's file: TypeScript as an ES module (`.mts`: top-level await, imports by package exports); JavaScript as ESM or CommonJS by its imports. */
function fileOf(block: Block, index: number): string {
  if (block.mark?.kind === 'run' && block.mark.name) return block.mark.name;
  const base = `${block.file.replace(/[/.]/g, '_')}_${block.line}_${index}`;
  if (isJs(block)) return `${base}.${/^\s*(import|export) /m.test(block.code) ? 'mjs' : 'cjs'}`;
  return `${base}.mts`;
}

test.before(() => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('the README and docs/ have code blocks, each checked or marked skip with a reason', (t) => {
  t.true(checked.length >= 30, `${checked.length} checked blocks`);
  t.true(blocks.some((b) => b.file === 'README.md' && b.mark?.kind === 'run'));
  // a skipped block is rare and says why on the line above its mark
  t.deepEqual(
    blocks.filter((b) => b.mark?.kind === 'skip' && !CHECKED.has(b.lang)).map((b) => b.at),
    [],
  );
});

for (const compiler of ['typescript', 'typescript7']) {
  test.serial(`every code block type-checks against the built package (${compiler})`, async (t) => {
    const sub = join(dir, compiler);
    mkdirSync(sub, { recursive: true });
    const where = new Map<string, Block>();
    checked.forEach((block, i) => {
      const name = fileOf(block, i);
      where.set(name, block);
      // a module of its own: its top-level names shadow the prelude's, never another block's
      writeFileSync(join(sub, name), `${block.code}\nexport {};\n`);
    });
    writeFileSync(
      join(sub, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          lib: ['ES2022', 'DOM'],
          strict: true,
          noEmit: true,
          experimentalDecorators: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: [join(root, 'test', 'docs', 'prelude.d.ts'), ...where.keys()],
      }),
    );
    const tsc = join(dirname(require.resolve(`${compiler}/package.json`)), 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(sub, 'tsconfig.json')], { cwd: sub }).catch((e: { stdout: string }) => e);
    // errors point back at the document and line they came from
    const errors = result.stdout
      .split('\n')
      .filter((l) => /error TS\d+/.test(l))
      .map((l) => {
        const m = /^(?:.*[\\/])?([^\\/(]+)\((\d+),(\d+)\): (.*)$/.exec(l);
        const block = m && where.get(m[1] as string);
        return block && m ? `${block.file}:${block.line + Number(m[2])}: ${m[4]}` : l;
      });
    t.deepEqual(errors, [], `${errors.length} errors in ${checked.length} blocks`);
  });
}

test('every JavaScript block is run (below) or parses', async (t) => {
  t.true(scripts.length >= 2);
  for (const [i, block] of scripts.entries()) {
    if (block.mark?.kind === 'run') continue;
    const name = join(dir, fileOf(block, i));
    writeFileSync(name, block.code);
    const result = await run(process.execPath, ['--check', name]).then(
      () => '',
      (e: { stderr: string }) => e.stderr,
    );
    t.is(result, '', block.at);
  }
});

test.serial('the quick start runs as written and prints what the README says', async (t) => {
  const runs = blocks.filter((b) => b.mark?.kind === 'run');
  t.true(runs.length >= 2);
  for (const block of runs) {
    const name = block.mark?.name as string;
    const expected = blocks.find((b) => b.mark?.kind === 'output' && b.mark.name === name);
    if (!expected) return t.fail(`${block.at}: no "docs-check: output ${name}" block`);
    const db = await createTestDatabase();
    try {
      writeFileSync(join(dir, name), block.code);
      const { stdout, stderr } = await run(process.execPath, [join(dir, name)], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: db.url },
      });
      t.is(stdout.trim(), expected.code.trim(), `${block.at}`);
      t.is(stderr, '', `${block.at}: nothing on stderr (no warning, no notice)`);
    } finally {
      await db.drop();
    }
  }
});
