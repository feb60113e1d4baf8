// `npx sequelize-multitenant export|delete|import|copy <module> ...`: the lifecycle functions from the
// command line, on the application's own Sequelize instance (its models, its multitenant() options, rls
// included). Progress goes to stderr — stdout stays free for `export --to -` — and the exit code says how
// it ended: 0 done, 1 refused or failed (nothing changed that the message does not name), 2 a usage or
// loading error, 130 stopped by Ctrl-C / SIGTERM (what was done is said; a delete goes on when run again).
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { Sequelize } from 'sequelize';
import { LifecycleInterruptedError } from '../errors';
import { copyTenant } from '../lifecycle/copy';
import { deleteTenant } from '../lifecycle/delete';
import type { LifecycleProgress } from '../lifecycle/export';
import { exportTenant } from '../lifecycle/export';
import { importTenant } from '../lifecycle/import';
import type { AnyModelStatic } from '../models';
import { isInstalled } from '../state';
import { databaseOf, loadApp, UsageError } from './load';

export const LIFECYCLE_USAGE = `usage: sequelize-multitenant export <module> <tenant> --to <dir|-> [options]
       sequelize-multitenant delete <module> <tenant> --confirm <tenant> [--dry-run] [options]
       sequelize-multitenant import <module> <dir|-> [--tenant <tenant>] [options]
       sequelize-multitenant copy   <module> <from> <to> --confirm <to> [--set <table>.<column>=<value>]... [options]
  <module>            a file that exports the application's Sequelize instance with multitenant() installed
                      (or a function returning one, called with DATABASE_URL), as for the doctor
  export --to <dir>   one <table>.jsonl per table and manifest.json; --to - writes the stream format to stdout
  delete --confirm    the same tenant again; --dry-run counts what would be deleted
  import <dir|->      what export wrote (- reads the stream format from stdin), into a tenant with no rows;
                      --tenant <id> refuses an export of any other tenant (do pass it for files from outside)
  copy --confirm      the new tenant again; --set gives the copied rows of a table another value
  --model <Model>     with several tenant tables: the one whose tenant this is
  --batch-size <n>    rows per statement (export, delete, import; default 1000)
  --json              print the result as JSON on stdout (not with --to -)
  --help              print this
Progress goes to stderr. Ctrl-C stops between two statements: a delete keeps what it deleted (run it
again to finish), an import or a copy keeps nothing, an export is left without its manifest.
Exit codes: 0 done, 1 refused or failed, 2 a usage or loading error, 130 stopped.`;

export const LIFECYCLE_COMMANDS = ['export', 'delete', 'import', 'copy'] as const;
export type LifecycleCommand = (typeof LIFECYCLE_COMMANDS)[number];

interface Args {
  command: LifecycleCommand;
  module: string;
  /** The tenant(s), or import's source. */
  positional: string[];
  to?: string;
  confirm?: string;
  dryRun: boolean;
  set: Record<string, Record<string, string>>;
  /** import: the only tenant it may write. */
  tenant?: string;
  model?: string;
  batchSize?: number;
  json: boolean;
}

const WANTS: Record<LifecycleCommand, string[]> = {
  export: ['<tenant>'],
  delete: ['<tenant>'],
  import: ['<dir|->'],
  copy: ['<from>', '<to>'],
};

function parse(command: LifecycleCommand, rest: string[]): Args | 'help' {
  const args: Args = { command, module: '', positional: [], dryRun: false, set: Object.create(null), json: false };
  const value = (name: string, v: string | undefined): string => {
    if (v === undefined || (v.startsWith('--') && v !== '-')) throw new UsageError(`${name} needs a value`);
    return v;
  };
  const only = (name: string, ...commands: LifecycleCommand[]) => {
    if (!commands.includes(command)) throw new UsageError(`${name} is not an option of ${command}`);
  };
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (a === '--help' || a === '-h') return 'help';
    if (a.startsWith('--') && a !== '--set') {
      if (seen.has(a)) throw new UsageError(`${a} is given twice`);
      seen.add(a);
    }
    if (a === '--json') args.json = true;
    else if (a === '--to') {
      only(a, 'export');
      args.to = value(a, rest[++i]);
    } else if (a === '--confirm') {
      only(a, 'delete', 'copy');
      args.confirm = value(a, rest[++i]);
    } else if (a === '--dry-run') {
      only(a, 'delete');
      args.dryRun = true;
    } else if (a === '--model') args.model = value(a, rest[++i]);
    else if (a === '--batch-size') {
      only(a, 'export', 'delete', 'import');
      const v = value(a, rest[++i]);
      if (!/^[1-9]\d*$/.test(v) || !Number.isSafeInteger(Number(v)))
        throw new UsageError(`--batch-size needs a positive integer, got ${v}`);
      args.batchSize = Number(v);
    } else if (a === '--set') {
      only(a, 'copy');
      const v = value(a, rest[++i]);
      const m = /^([^=]+)\.([^.=]+)=(.*)$/s.exec(v);
      if (!m) throw new UsageError(`--set needs <table>.<column>=<value>, got ${v}`);
      const [, table, column, text] = m as unknown as [string, string, string, string];
      if ([table, column].some((name) => name === '__proto__' || name === 'constructor' || name === 'prototype')) {
        throw new UsageError(`--set ${table}.${column}: no table or column is named so`);
      }
      const columns = Object.hasOwn(args.set, table) ? (args.set[table] as Record<string, string>) : Object.create(null);
      columns[column] = text;
      args.set[table] = columns;
    } else if (a === '--tenant') {
      only(a, 'import');
      args.tenant = value(a, rest[++i]);
    } else if (a.startsWith('-') && a !== '-' && !/^-\d+$/.test(a)) throw new UsageError(`unknown option ${a}`);
    else if (!args.module) args.module = a;
    else args.positional.push(a);
  }
  const wants = WANTS[command];
  if (!args.module) throw new UsageError('which module holds the models?');
  if (args.positional.length !== wants.length) {
    throw new UsageError(
      `${command} takes ${wants.join(' ')} after the module, got ${args.positional.length ? args.positional.join(' ') : 'nothing'}`,
    );
  }
  if (command === 'export' && !args.to) throw new UsageError('export needs --to <dir> (or --to - for stdout)');
  if (args.json && args.to === '-') throw new UsageError('--json prints to stdout, where --to - writes the export: use one of them');
  if (command === 'delete' && !args.confirm && !args.dryRun) {
    throw new UsageError(`delete removes every row of tenant ${args.positional[0]}: add --confirm ${args.positional[0]} (or --dry-run)`);
  }
  if (command === 'copy' && !args.confirm) {
    throw new UsageError(`copy creates tenant ${args.positional[1]}: add --confirm ${args.positional[1]}`);
  }
  return args;
}

/** The model --model names, among the instance's tenant models. */
function modelNamed(sequelize: Sequelize, name: string | undefined): AnyModelStatic | undefined {
  if (name === undefined) return undefined;
  const models = sequelize.models as Record<string, AnyModelStatic>;
  const model = Object.hasOwn(models, name) ? models[name] : undefined;
  if (!model) throw new UsageError(`--model ${name}: the instance has no such model (it has ${Object.keys(models).join(', ')})`);
  return model;
}

/** Progress on stderr: the first report at once, then at most one a second, and each table's last. */
function progressPrinter(err: (line: string) => void, verb: string): { report: (p: LifecycleProgress) => void; flush: () => void } {
  let last = 0;
  let pending: LifecycleProgress | undefined;
  const print = (p: LifecycleProgress) => {
    err(`${verb} ${p.table}: ${p.rows} rows (${p.total} in all)`);
    pending = undefined;
    last = Date.now();
  };
  return {
    report(p) {
      if (pending && pending.table !== p.table) print(pending);
      if (last === 0 || Date.now() - last >= 1000) print(p);
      else pending = p;
    },
    flush() {
      if (pending) print(pending);
    },
  };
}

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Where `export --to -` writes. */
  stdout: NodeJS.WritableStream;
  /** Where `import -` reads. */
  stdin: NodeJS.ReadableStream;
  /** Aborted by the first SIGINT or SIGTERM. */
  signal?: AbortSignal;
}

function table(rows: Array<{ table: string; rows: number }>): string[] {
  const width = Math.max(0, ...rows.map((r) => r.table.length));
  return rows.map((r) => `  ${r.table.padEnd(width)}  ${r.rows}`);
}

/** One lifecycle command (the arguments after its name): the exit code. */
export async function lifecycle(command: LifecycleCommand, argv: string[], io: CliIO): Promise<number> {
  const args = parse(command, argv);
  if (args === 'help') {
    io.out(LIFECYCLE_USAGE);
    return 0;
  }
  const sequelize = await loadApp(args.module, command);
  try {
    if (!isInstalled(sequelize)) {
      throw new UsageError(
        `${args.module}'s Sequelize instance has no multitenant(): install it in the module with the application's options (rls too), so that ${command} sees the tenants as the application does`,
      );
    }
    const model = modelNamed(sequelize, args.model);
    const common = { ...(model ? { model } : {}), ...(io.signal ? { signal: io.signal } : {}) };
    const batch = args.batchSize ? { batchSize: args.batchSize } : {};
    const progress = progressPrinter(io.err, { export: 'exported', delete: 'deleted', import: 'imported', copy: 'copied' }[command]);
    const onProgress = progress.report;
    const database = databaseOf(sequelize);
    const [first, second] = args.positional as [string, string];
    /** The result: as JSON with --json, else a heading and its tables (to `say`: stderr when stdout holds the export). */
    const report = (result: unknown, heading: string, rows: Array<{ table: string; rows: number }>, say = io.out) => {
      progress.flush();
      if (args.json) return io.out(JSON.stringify(result, null, 2));
      say(heading);
      for (const line of table(rows)) say(line);
    };
    try {
      if (command === 'export') {
        const manifest = await exportTenant(sequelize, first, {
          to: args.to === '-' ? io.stdout : (args.to as string),
          onProgress,
          ...batch,
          ...common,
        });
        report(
          manifest,
          `tenant ${first} exported from ${database}${args.to === '-' ? ' to stdout' : ` to ${args.to}`}:`,
          manifest.tables,
          io.err,
        );
      } else if (command === 'delete') {
        const result = await deleteTenant(sequelize, first, {
          confirm: args.dryRun && args.confirm === undefined ? first : args.confirm,
          dryRun: args.dryRun,
          onProgress,
          ...batch,
          ...common,
        });
        report(
          result,
          `tenant ${first} ${result.dryRun ? 'would lose' : 'deleted from'} ${database}: ${result.total} rows${result.dryRun ? ' (dry run: nothing deleted)' : ''}`,
          result.tables,
        );
        if (result.advice && !args.json) io.err(`note: ${result.advice}`);
      } else if (command === 'import') {
        const manifest = await importTenant(sequelize, source(first, io), {
          onProgress,
          ...batch,
          ...common,
          ...(args.tenant !== undefined ? { tenant: args.tenant } : {}),
        });
        report(manifest, `tenant ${String(manifest.tenant)} imported into ${database}:`, manifest.tables);
      } else {
        const result = await copyTenant(sequelize, first, second, { confirm: args.confirm, set: args.set, onProgress, ...common });
        report(result, `tenant ${first} copied to ${second} in ${database}: ${result.total} rows, verified`, result.tables);
      }
      return 0;
    } catch (err) {
      progress.flush();
      if (err instanceof LifecycleInterruptedError) {
        io.err(`sequelize-multitenant ${command}: ${err.message}`);
        return 130;
      }
      if (err instanceof UsageError) throw err;
      // a refusal, or the database's own error (a key, a connection): one sentence, no stack
      io.err(`sequelize-multitenant ${command}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  } finally {
    await sequelize.close();
  }
}

/** Import's source: stdin (`-`), a directory an export wrote, or a file holding a streamed export (`--to - > t.jsonl`). */
function source(from: string, io: CliIO): string | NodeJS.ReadableStream {
  if (from === '-') return io.stdin;
  if (!existsSync(from)) throw new UsageError(`${from} does not exist`);
  return statSync(from).isDirectory() ? from : createReadStream(from);
}
