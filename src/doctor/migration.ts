import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Problem, STEPS, type TableReport } from './inspect';

/**
 * The fixes of every problem as one ordered list of statements: tenant columns retyped, then the
 * single-column foreign keys dropped (they depend on the keys about to change), primary keys and unique
 * keys rebuilt with the tenant column, the tenant-aware foreign keys added, and — on Citus — the tables
 * distributed: the tenant table first, then each table after the tables its foreign keys point to.
 */
export function orderedFixes(reports: TableReport[]): { transactional: string[]; distribution: string[] } {
  const out: string[] = [];
  let firstDistribution = -1;
  const problems = reports.flatMap((r) => r.problems);
  for (const step of STEPS) {
    const statements = problems.flatMap((p: Problem) => p.fix.filter((f) => f.step === step).map((f) => ({ table: p.table, sql: f.sql })));
    if (step !== 'distribute') {
      for (const s of statements) if (!out.includes(s.sql)) out.push(s.sql);
      continue;
    }
    firstDistribution = out.length;
    const byTable = new Map(reports.map((r) => [r.table, r]));
    const done = new Set<string>();
    const visit = (table: string, path: Set<string>) => {
      if (done.has(table) || path.has(table)) return;
      path.add(table);
      for (const parent of byTable.get(table)?.parents ?? []) visit(parent, path);
      done.add(table);
      for (const s of statements.filter((x) => x.table === table)) if (!out.includes(s.sql)) out.push(s.sql);
    };
    const tenantFirst = [...reports].sort((a, b) => Number(b.kind === 'tenant table') - Number(a.kind === 'tenant table'));
    for (const r of tenantFirst) visit(r.table, new Set());
  }
  const cut = firstDistribution < 0 ? out.length : firstDistribution;
  return { transactional: out.slice(0, cut), distribution: out.slice(cut) };
}

/** The module system a migration is written in, and the file's extension. */
export interface MigrationFormat {
  format: 'esm' | 'cjs';
  extension: '.js' | '.mjs' | '.cjs';
}

/**
 * The application's module system for a migration written into `dir`: the extension the migrations already
 * there use (`.mjs` ES modules, `.cjs` CommonJS), else the `type` of the nearest package.json above `dir`
 * (`"module"`: an ES module `.js`), else CommonJS `.js`. `forced` (the `--format` flag) wins.
 */
export function migrationFormat(dir: string, forced?: 'esm' | 'cjs'): MigrationFormat {
  const existing = existsSync(dir) ? readdirSync(dir) : [];
  const type = packageTypeOf(dir);
  if (forced === 'esm') return { format: 'esm', extension: type === 'module' ? '.js' : '.mjs' };
  if (forced === 'cjs') return { format: 'cjs', extension: type === 'module' ? '.cjs' : '.js' };
  if (existing.some((f) => f.endsWith('.mjs'))) return { format: 'esm', extension: '.mjs' };
  if (existing.some((f) => f.endsWith('.cjs'))) return { format: 'cjs', extension: '.cjs' };
  return type === 'module' ? { format: 'esm', extension: '.js' } : { format: 'cjs', extension: '.js' };
}

/** The `type` of the nearest package.json at or above `dir` ('commonjs' when there is none). */
function packageTypeOf(dir: string): string {
  for (let at = resolve(dir); ; at = dirname(at)) {
    const file = join(at, 'package.json');
    if (existsSync(file)) {
      try {
        return (JSON.parse(readFileSync(file, 'utf8')) as { type?: string }).type ?? 'commonjs';
      } catch {
        return 'commonjs';
      }
    }
    if (dirname(at) === at) return 'commonjs';
  }
}

/**
 * A migration file that umzug (`up({ context: queryInterface })`) and sequelize-cli (`up(queryInterface)`)
 * both run, as an ES module (`export async function up`) or CommonJS (`module.exports = { up, down }`).
 */
export function migrationSource(
  statements: { transactional: string[]; distribution: string[] },
  when: Date,
  database: string,
  format: 'esm' | 'cjs' = 'cjs',
): string {
  const up = `async up(arg) {
    const queryInterface = arg && arg.context ? arg.context : arg;
    const sequelize = queryInterface.sequelize;
    await sequelize.transaction(async (transaction) => {
      for (const sql of keys) await sequelize.query(sql, { transaction });
    });
    for (const sql of distribution) await sequelize.query(sql);
  }`;
  const down = `async down() {
    throw new Error('written by sequelize-multitenant doctor: this migration is not reversed automatically');
  }`;
  const exports =
    format === 'esm'
      ? `export ${up.replace(/^async up/, 'async function up').replace(/\n {2}/g, '\n')}

export ${down.replace(/^async down/, 'async function down').replace(/\n {2}/g, '\n')}
`
      : // exports.up / exports.down: named exports also when an ES-module host import()s the file (umzug does
        // when the application's entry is an ES module)
        `exports.${up.replace(/^async up/, 'up = async function up').replace(/\n {2}/g, '\n')};

exports.${down.replace(/^async down/, 'down = async function down').replace(/\n {2}/g, '\n')};
`;
  return `${format === 'cjs' ? "'use strict';\n" : ''}// Written by \`sequelize-multitenant doctor --migration\` on ${when.toISOString()} for ${database}.
// The fixes of the problems the doctor found, in a safe order: foreign keys dropped before the keys they
// depend on change, keys rebuilt with the tenant column, tenant-aware foreign keys — in one transaction
// (all or nothing) — then, on Citus, the tables distributed, parents first (Citus distributes outside a
// transaction). Run the doctor again afterwards.
const keys = ${JSON.stringify(statements.transactional, null, 2)};
const distribution = ${JSON.stringify(statements.distribution, null, 2)};

${exports}`;
}
