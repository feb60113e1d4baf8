// The docs cannot rot: every TypeScript block of the README and of docs/ is type-checked against the
// built package (resolved by its name from node_modules, through package.json "exports", as an
// application resolves it) with TypeScript 5 and 7; every JavaScript block is run (the quick start,
// against a fresh test database, must print what the README says it prints) or at least parsed by Node;
// every host program (Express, Fastify, Koa, NestJS) is started against a fresh test database and sent
// the requests its docs list, each answer's status and body compared; the BullMQ program runs on Redis.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { createTestDatabase } from './helpers/db';
import { type Block, blocksOf, CHECKED, documents } from './helpers/docs';

const run = promisify(execFile);
const root = join(__dirname, '..');
// An application's folder: ES modules (`"type": "module"`, so `app.ts` imports `./models.js`), the package
// in its node_modules (this checkout, built), the rest of node_modules found up the tree.
const dir = join(root, '.docs-check', `run-${process.pid}`);
const blocks = documents().flatMap(blocksOf);
const isJs = (b: Block) => b.lang === 'js' || b.lang === 'javascript';
const checked = blocks.filter((b) => CHECKED.has(b.lang) && !isJs(b) && b.mark?.kind !== 'skip');
const scripts = blocks.filter((b) => isJs(b) && b.mark?.kind !== 'skip');
const modules = blocks.filter((b) => b.mark?.kind === 'file');
/** Redis answers? (CI starts it; elsewhere the BullMQ program is reported as skipped without one.) */
const redisAnswers =
  Boolean(process.env.CI) ||
  spawnSync(process.execPath, [
    '-e',
    "const s=require('net').connect(6379,'127.0.0.1',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),1000)",
  ]).status === 0;

/** A block's file: TypeScript as an ES module (`.mts`: top-level await, imports by package exports); JavaScript as ESM or CommonJS by its imports. */
function fileOf(block: Block, index: number): string {
  if (block.mark?.kind && ['run', 'serve', 'file'].includes(block.mark.kind) && block.mark.name) return block.mark.name;
  const base = `${block.file.replace(/[/.]/g, '_')}_${block.line}_${index}`;
  if (isJs(block)) return `${base}.${/^\s*(import|export) /m.test(block.code) ? 'mjs' : 'cjs'}`;
  return `${base}.mts`;
}

test.before(() => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs-app', private: true, type: 'module' }));
  symlinkSync(root, join(dir, 'node_modules', 'sequelize-multitenant'), 'dir');
  // what tsx reads to compile the NestJS program's decorators
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { experimentalDecorators: true, target: 'ES2022' } }));
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

/** Writes the modules the programs import (`docs-check: file`) beside them. */
function writeModules(): void {
  for (const block of modules) writeFileSync(join(dir, block.mark?.name as string), block.code);
}
/** Node's arguments for a program: TypeScript through tsx, as the docs tell users to run it. */
const nodeArgs = (name: string) => (/\.[cm]?ts$/.test(name) ? ['--import', 'tsx', name] : [name]);
const needsRedis = (block: Block) => /from 'bullmq'/.test(block.code);

test.serial('the programs run as written and print what the docs say (the quick start; BullMQ on Redis)', async (t) => {
  const runs = blocks.filter((b) => b.mark?.kind === 'run');
  t.true(runs.length >= 3);
  writeModules();
  for (const block of runs) {
    const name = block.mark?.name as string;
    const expected = blocks.find((b) => b.mark?.kind === 'output' && b.mark.name === name);
    if (!expected) return t.fail(`${block.at}: no "docs-check: output ${name}" block`);
    if (needsRedis(block) && !redisAnswers) {
      t.log(`${block.at}: skipped, no Redis at 127.0.0.1:6379`);
      continue;
    }
    const db = await createTestDatabase();
    try {
      writeFileSync(join(dir, name), block.code);
      const { stdout, stderr } = await run(process.execPath, nodeArgs(name), {
        cwd: dir,
        env: { ...process.env, DATABASE_URL: db.url },
        timeout: 120_000,
      });
      t.is(stdout.trim(), expected.code.trim(), `${block.at}`);
      t.is(stderr, '', `${block.at}: nothing on stderr (no warning, no notice)`);
    } finally {
      await db.drop();
    }
  }
});

/** One line of a `docs-check: requests` block: `GET /path  header: value  {"json":"body"}  → 200 ["json"]`. */
interface Exchange {
  line: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  status: number;
  answer?: unknown;
}
function exchangesOf(block: Block): Exchange[] {
  return block.code
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [ask, answer] = line.split('→').map((x) => x.trim()) as [string, string];
      const m = /^(GET|POST|PUT|PATCH|DELETE) (\S+)\s*(.*)$/.exec(ask);
      const r = /^(\d{3})\s*(.*)$/.exec(answer ?? '');
      if (!m || !r) throw new Error(`${block.at}: cannot read "${line}"`);
      const rest = m[3] as string;
      const brace = rest.search(/[{[]/);
      const headerText = brace < 0 ? rest : rest.slice(0, brace);
      const headers = Object.fromEntries([...headerText.matchAll(/([\w-]+): (\S+)/g)].map((h) => [h[1] as string, h[2] as string]));
      const body = brace < 0 ? undefined : rest.slice(brace).trim();
      if (body !== undefined) headers['content-type'] = 'application/json';
      return {
        line,
        method: m[1] as string,
        path: m[2] as string,
        headers,
        body,
        status: Number(r[1]),
        answer: r[2] ? JSON.parse(r[2] as string) : undefined,
      };
    });
}
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
/** Resolves once the program prints its "listening" line; rejects with its output if it exits first. */
function listening(child: ChildProcess, at: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${at}: no "listening" line in 90 s:\n${out}`)), 90_000);
    const read = (chunk: Buffer) => {
      out += chunk;
      if (/listening on /.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${at}: exited (${code}) before listening:\n${out}`));
    });
  });
}

test.serial('every host program serves the requests its docs list with the statuses and bodies they show', async (t) => {
  const serves = blocks.filter((b) => b.mark?.kind === 'serve');
  t.deepEqual(serves.map((b) => b.mark?.name).sort(), ['express.ts', 'fastify.ts', 'koa.ts', 'nestjs.ts']);
  writeModules();
  for (const block of serves) {
    const name = block.mark?.name as string;
    const asked = blocks.find((b) => b.mark?.kind === 'requests' && b.mark.name === name);
    if (!asked) return t.fail(`${block.at}: no "docs-check: requests ${name}" block`);
    const exchanges = exchangesOf(asked);
    // what a host answers for a refusal: every status the docs give is shown by one program at least
    t.true(exchanges.some((e) => e.status === 401) && exchanges.some((e) => e.status === 400), `${asked.at}: a 401 and a 400`);
    const db = await createTestDatabase();
    const port = await freePort();
    writeFileSync(join(dir, name), block.code);
    const child = spawn(process.execPath, nodeArgs(name), {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: db.url, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await listening(child, block.at);
      for (const e of exchanges) {
        const res = await fetch(`http://127.0.0.1:${port}${e.path}`, { method: e.method, headers: e.headers, body: e.body });
        const text = await res.text();
        t.is(res.status, e.status, `${asked.at}: ${e.line} (got: ${text.slice(0, 300)})`);
        // the JSON as the docs show it, keys in the order the client sees them
        if (e.answer !== undefined) t.is(JSON.stringify(JSON.parse(text)), JSON.stringify(e.answer), `${asked.at}: ${e.line}`);
      }
    } finally {
      child.kill();
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
      await db.drop();
    }
  }
});
