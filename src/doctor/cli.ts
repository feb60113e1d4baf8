#!/usr/bin/env node
// `npx sequelize-multitenant doctor <module> [--migration <dir>] [--json]`: loads the application's models
// (a module that exports a Sequelize instance, or a function that returns one — called with DATABASE_URL),
// reports per table what blocks scale-out on Citus and the exact fix, and with --migration writes those
// fixes as one migration file. Exit code 1 when something blocks distribution, 2 for a usage error.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Sequelize } from 'sequelize';
import { inspect, type TableReport } from './inspect';
import { migrationFormat, migrationSource, orderedFixes } from './migration';

const USAGE = `usage: sequelize-multitenant doctor <module> [--migration <dir>] [--format esm|cjs] [--json]
  <module>           a file that exports a Sequelize instance (module.exports, default or \`sequelize\`),
                     or a function returning one (called with DATABASE_URL); its models define the tenants.
                     JavaScript (CommonJS or ES module), or TypeScript when tsx is installed
  --migration <dir>  write the fixes as a migration file (umzug / sequelize-cli) into <dir>, in the
                     module system of the migrations there, else of the nearest package.json
  --format esm|cjs   write the migration as an ES module or as CommonJS whatever the folder uses
  --json             print the report as JSON
  --help             print this
Exit codes: 0 nothing blocks scale-out, 1 something does, 2 a usage or loading error.`;

interface Args {
  module?: string;
  migration?: string;
  format?: 'esm' | 'cjs';
  json: boolean;
  help?: boolean;
}

function parse(argv: string[]): Args | string {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') return { json: false, help: true };
  if (command !== 'doctor') return `unknown command ${command ?? '(none)'}`;
  const args: Args = { json: false };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (a === '--help' || a === '-h') return { json: false, help: true };
    if (a === '--json') args.json = true;
    else if (a === '--format') {
      const format = rest[++i];
      if (format !== 'esm' && format !== 'cjs') return `--format needs esm or cjs, got ${format ?? 'nothing'}`;
      args.format = format;
    } else if (a === '--migration') {
      const dir = rest[++i];
      if (!dir) return '--migration needs a directory';
      args.migration = dir;
    } else if (a.startsWith('-')) return `unknown option ${a}`;
    else if (!args.module) args.module = a;
    else return `unexpected argument ${a}`;
  }
  if (args.format && !args.migration) return '--format applies to --migration <dir>';
  return args.module ? args : 'which module holds the models?';
}

function isSequelize(value: unknown): value is Sequelize {
  return (
    !!value &&
    typeof value === 'object' &&
    typeof (value as Sequelize).getQueryInterface === 'function' &&
    typeof (value as Sequelize).define === 'function'
  );
}

/** A usage or loading problem, said in one sentence (printed without a stack, exit code 2). */
class DoctorError extends Error {}

/** A TypeScript module, through tsx when the application has it installed. */
async function loadTypeScript(path: string, file: string): Promise<unknown> {
  let tsx: { tsImport(specifier: string, parent: string): Promise<unknown> };
  try {
    // the application's tsx (resolved from the module, not from this package), its ES-module API as its
    // package.json exports it
    const manifest = createRequire(path).resolve('tsx/package.json');
    const exported = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import?: { default?: string } }> }).exports[
      './esm/api'
    ]?.import?.default;
    if (!exported) throw new Error('tsx has no ./esm/api export');
    tsx = (await import(pathToFileURL(join(dirname(manifest), exported)).href)) as typeof tsx;
  } catch {
    throw new DoctorError(
      `${file} is TypeScript: install tsx in the application (npm install -D tsx) and run the doctor again, or point it at the compiled JavaScript`,
    );
  }
  return tsx.tsImport(pathToFileURL(path).href, pathToFileURL(__filename).href);
}

/** The application's Sequelize instance, from a CommonJS or ES module, or a TypeScript one (tsx). */
async function load(file: string): Promise<Sequelize> {
  const path = resolve(file);
  if (!existsSync(path)) throw new DoctorError(`${file} does not exist (resolved to ${path})`);
  let loaded: unknown;
  if (/\.[cm]?ts$/.test(path)) loaded = await loadTypeScript(path, file);
  else if (path.endsWith('.mjs')) loaded = await import(pathToFileURL(path).href);
  else {
    try {
      loaded = require(path);
    } catch (err) {
      // an ES module (one with top-level await too: ERR_REQUIRE_ASYNC_MODULE on Node 20.19+)
      if (!['ERR_REQUIRE_ESM', 'ERR_REQUIRE_ASYNC_MODULE'].includes((err as { code?: string }).code ?? '')) throw err;
      loaded = await import(pathToFileURL(path).href);
    }
  }
  const candidates = [loaded, (loaded as { default?: unknown })?.default, (loaded as { sequelize?: unknown })?.sequelize];
  for (const c of candidates) {
    if (isSequelize(c)) return c;
    if (typeof c === 'function') {
      if (!process.env.DATABASE_URL) {
        throw new DoctorError(
          `DATABASE_URL is not set, and ${file} exports a function that makes the Sequelize instance from it: DATABASE_URL=postgres://... npx sequelize-multitenant doctor ${file}`,
        );
      }
      const made = await (c as (url: string | undefined) => unknown)(process.env.DATABASE_URL);
      if (isSequelize(made)) return made;
    }
  }
  throw new DoctorError(`${file} exports no Sequelize instance (module.exports, default or sequelize) nor a function returning one`);
}

function text(reports: TableReport[], database: string, citus: boolean): string {
  const lines = [`sequelize-multitenant doctor — ${database} (${citus ? 'Citus' : 'plain PostgreSQL'})`, ''];
  for (const r of reports) {
    const what = r.kind === 'global' ? 'global' : `${r.kind}, tenant column ${r.tenantColumn}`;
    const state = [
      r.citus && r.citus !== 'none'
        ? `citus: ${r.citus}${r.colocatedWithTenantTable ? ', colocated' : ''}`
        : r.citus
          ? 'citus: not distributed'
          : '',
      r.rls ? `rls: ${r.rls}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    lines.push(`${r.problems.length ? '✗' : '✓'} ${r.table} (${r.model}: ${what}${state ? `; ${state}` : ''})`);
    for (const p of r.problems) {
      lines.push(`    ${p.severity === 'blocks' ? 'blocks' : 'warn  '}: ${p.message}`);
      for (const f of p.fix) lines.push(`      fix: ${f.sql}`);
    }
  }
  const blocking = reports.flatMap((r) => r.problems).filter((p) => p.severity === 'blocks').length;
  lines.push(
    '',
    blocking ? `${blocking} problem${blocking > 1 ? 's' : ''} block${blocking > 1 ? '' : 's'} scale-out.` : 'Nothing blocks scale-out.',
  );
  return lines.join('\n');
}

export async function main(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const args = parse(argv);
  if (typeof args === 'string') {
    out(`${args}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    out(USAGE);
    return 0;
  }
  const sequelize = await load(args.module as string);
  try {
    const reports = await inspect(sequelize);
    const config = (sequelize as unknown as { config: { host?: string; port?: number; database?: string } }).config;
    const database = `${config.host ?? ''}${config.port ? `:${config.port}` : ''}/${config.database ?? ''}`;
    const citus = reports.some((r) => r.citus !== undefined);
    const blocking = reports.some((r) => r.problems.some((p) => p.severity === 'blocks'));
    if (args.json) out(JSON.stringify({ database, citus, tables: reports }, null, 2));
    else out(text(reports, database, citus));
    if (args.migration) {
      const statements = orderedFixes(reports);
      const when = new Date();
      const { format, extension } = migrationFormat(args.migration, args.format);
      mkdirSync(args.migration, { recursive: true });
      const file = join(args.migration, `${when.toISOString().replace(/\D/g, '').slice(0, 14)}-multitenant-doctor${extension}`);
      writeFileSync(file, migrationSource(statements, when, database, format));
      const count = statements.transactional.length + statements.distribution.length;
      if (!args.json) out(`${count} statement${count === 1 ? '' : 's'} written to ${file}`);
    }
    return blocking ? 1 : 0;
  } finally {
    await sequelize.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`sequelize-multitenant doctor: ${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
