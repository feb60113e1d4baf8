// `npx sequelize-multitenant doctor <module> [--migration <dir>] [--json]`: loads the application's models
// (a module that exports a Sequelize instance, or a function that returns one — called with DATABASE_URL),
// reports per table what blocks scale-out on Citus and the exact fix, and with --migration writes those
// fixes as one migration file. Exit code 1 when something blocks distribution, 2 for a usage error.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect, type TableReport } from '../doctor/inspect';
import { migrationFormat, migrationSource, orderedFixes } from '../doctor/migration';
import { databaseOf, loadApp } from './load';

export const DOCTOR_USAGE = `usage: sequelize-multitenant doctor <module> [--migration <dir>] [--format esm|cjs] [--json]
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

function parse(rest: string[]): Args | string {
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

/** `doctor <module> ...` (the arguments after `doctor`): 0 nothing blocks scale-out, 1 something does, 2 usage. */
export async function doctor(argv: string[], out: (line: string) => void): Promise<number> {
  const args = parse(argv);
  if (typeof args === 'string') {
    out(`${args}\n${DOCTOR_USAGE}`);
    return 2;
  }
  if (args.help) {
    out(DOCTOR_USAGE);
    return 0;
  }
  const sequelize = await loadApp(args.module as string, 'doctor');
  try {
    const reports = await inspect(sequelize);
    const database = databaseOf(sequelize);
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
