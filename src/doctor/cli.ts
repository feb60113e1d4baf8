#!/usr/bin/env node
// `npx sequelize-multitenant doctor <module> [--migration <dir>] [--json]`: loads the application's models
// (a module that exports a Sequelize instance, or a function that returns one — called with DATABASE_URL),
// reports per table what blocks scale-out on Citus and the exact fix, and with --migration writes those
// fixes as one migration file. Exit code 1 when something blocks distribution, 2 for a usage error.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Sequelize } from 'sequelize';
import { inspect, type TableReport } from './inspect';
import { migrationSource, orderedFixes } from './migration';

const USAGE = `usage: sequelize-multitenant doctor <module> [--migration <dir>] [--json]
  <module>           a file that exports a Sequelize instance (module.exports, default or \`sequelize\`),
                     or a function returning one (called with DATABASE_URL); its models define the tenants
  --migration <dir>  write the fixes as a migration file (umzug / sequelize-cli) into <dir>
  --json             print the report as JSON`;

interface Args {
  module?: string;
  migration?: string;
  json: boolean;
}

function parse(argv: string[]): Args | string {
  const [command, ...rest] = argv;
  if (command !== 'doctor') return `unknown command ${command ?? '(none)'}`;
  const args: Args = { json: false };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (a === '--json') args.json = true;
    else if (a === '--migration') {
      const dir = rest[++i];
      if (!dir) return '--migration needs a directory';
      args.migration = dir;
    } else if (a.startsWith('-')) return `unknown option ${a}`;
    else if (!args.module) args.module = a;
    else return `unexpected argument ${a}`;
  }
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

/** The application's Sequelize instance, from a CommonJS or ES module. */
async function load(file: string): Promise<Sequelize> {
  const path = resolve(file);
  let loaded: unknown;
  if (path.endsWith('.mjs')) loaded = await import(pathToFileURL(path).href);
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
      const made = await (c as (url: string | undefined) => unknown)(process.env.DATABASE_URL);
      if (isSequelize(made)) return made;
    }
  }
  throw new Error(`${file} exports no Sequelize instance (module.exports, default or sequelize) nor a function returning one`);
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
      mkdirSync(args.migration, { recursive: true });
      const file = join(args.migration, `${when.toISOString().replace(/\D/g, '').slice(0, 14)}-multitenant-doctor.js`);
      writeFileSync(file, migrationSource(statements, when, database));
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
