// exportTenant: every row of one tenant, table by table in foreign-key order, streamed with backpressure
// — read in pages by primary key inside one REPEATABLE READ transaction (one snapshot for all tables;
// memory holds one page), each row as PostgreSQL's own JSON of it (`row_to_json`: exact numerics, dates
// and bytea as PostgreSQL writes them), with a manifest of counts and SHA-256 checksums.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Sequelize, Transaction } from 'sequelize';
import { withTenant } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { checkOptions } from '../options';
import type { TenantId } from '../tenant';
import { encodeStrictly } from '../visibility';
import { pages } from './rows';
import { tenantTablesInOrder } from './tables';
import { assertFitsTables, libraryVersion, lifecycleTenant, MANIFEST_FORMAT, stopIfAborted, tenantExists } from './tenant';

const INCOMPLETE = 'the export is incomplete (it has no manifest: importTenant refuses it); nothing in the database changed';

/** One table of an export, as the manifest lists it. */
export interface TenantExportTable {
  /** `schema.table` or `table`. */
  table: string;
  /** The model Sequelize knows it by. */
  model: string;
  /** The tenant column. */
  tenantColumn: string;
  /** The primary key's columns (the rows' order). */
  key: string[];
  /** The file of a directory export (`<table>.jsonl`). */
  file: string;
  rows: number;
  /** SHA-256 (hex) of the table's rows as written: each row's JSON and a newline, in key order. */
  sha256: string;
}

/** What an export holds: written last (`manifest.json`, or the stream's last line). */
export interface TenantManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  /** The library version that wrote it. */
  library: string;
  tenant: TenantId;
  /** When the export's snapshot was taken (ISO 8601). */
  exportedAt: string;
  /** Parents before children: the order an import inserts them in. */
  tables: TenantExportTable[];
}

/** Progress of a lifecycle operation: called after each page of rows. */
export interface LifecycleProgress {
  table: string;
  /** Rows of this table done so far. */
  rows: number;
  /** Rows of every table done so far. */
  total: number;
}

/** Options of `exportTenant`: `{ to: './exports/store-7' }` or `{ to: process.stdout }`. */
export interface ExportTenantOptions {
  /**
   * A directory (created if needed): one `<table>.jsonl` per table — one JSON object per row — and
   * `manifest.json`. Or a writable stream: one JSON array per line, `["table", {...}]` before a table's
   * rows, `["row", {...}]` per row, `["manifest", {...}]` last (what `importTenant` reads back).
   */
  to: string | NodeJS.WritableStream;
  /** Rows per page (default 1000): what memory holds at a time. */
  batchSize?: number;
  onProgress?: (progress: LifecycleProgress) => void;
  /** With several tenant tables (stores and orgs): the one whose tenant this is. */
  model?: AnyModelStatic;
  /** Stops between two pages when aborted (`LifecycleInterruptedError`): the export is incomplete, it has no manifest. */
  signal?: AbortSignal;
}

type Emitting = NodeJS.WritableStream & NodeJS.EventEmitter & { destroyed?: boolean; writableEnded?: boolean; destroy?: () => void };

/** The refusal of a destination that failed or went away (a full disk, a closed socket): the export stops. */
function gone(what: string, err?: unknown): MultitenantError {
  const error = new MultitenantError(
    `the destination ${what}${err ? ` (${(err as Error).message ?? String(err)})` : ''} before the export was complete; nothing in the database changed`,
    { operation: 'exportTenant' },
  );
  if (err) (error as Error & { cause?: unknown }).cause = err;
  return error;
}

/**
 * A destination written with backpressure, watched for its whole use: an `error` or a `close` ends the
 * export with a MultitenantError — never a wait for `drain` that does not come (a client that went away
 * while its download waited) nor an error nobody listens to (a full disk, a file that cannot be opened).
 */
class Sink {
  private failure: MultitenantError | undefined;
  private readonly wake = new Set<() => void>();
  private readonly onError = (err: unknown) => this.fail(gone('failed', err));
  private readonly onClose = () => this.fail(gone('was closed'));
  constructor(readonly stream: Emitting) {
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
  }
  private fail(error: MultitenantError): void {
    this.failure ??= error;
    for (const w of this.wake) w();
  }
  async write(text: string): Promise<void> {
    if (!this.failure && (this.stream.destroyed || this.stream.writableEnded)) this.failure = gone('was closed');
    if (this.failure) throw this.failure;
    if (this.stream.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.wake.delete(done);
        resolve();
      };
      this.stream.on('drain', done);
      this.wake.add(done);
    });
    if (this.failure) throw this.failure;
  }
  /** Ends a file of a directory export (waits until it is flushed). */
  async end(): Promise<void> {
    if (this.failure) throw this.failure;
    this.stream.off('close', this.onClose);
    await new Promise<void>((resolve, reject) => {
      this.wake.add(() => reject(this.failure));
      this.stream.end(() => resolve());
    });
    this.release();
  }
  /** Stops watching (the caller's own stream stays as it is). */
  release(): void {
    this.stream.off('error', this.onError);
    this.stream.off('close', this.onClose);
    // (an error the stream emits after a failure we reported is not left to crash the process)
    if (this.failure && this.stream.listenerCount('error') === 0) this.stream.on('error', () => undefined);
  }
}

/** A file opened for writing, or the refusal that it cannot be (the error is never left unheard). */
async function opened(path: string): Promise<Sink> {
  const out = createWriteStream(path, { flags: 'wx' });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (err) => reject(gone(`file ${path} could not be opened`, err)));
  });
  return new Sink(out as unknown as Emitting);
}

/** A file of a directory export for one table: its name encoded (no `/`, no `..`, no two tables on one file). */
export function fileOf(table: { table: string | { tableName: string; schema?: string } }): string {
  // (its dots encoded too: `"x.y"` and `x`.`y` get two files)
  const part = (name: string) => encodeStrictly(name).replace(/\./g, '%2E');
  const t = table.table;
  return `${typeof t === 'string' ? part(t) : `${t.schema ? `${part(t.schema)}.` : ''}${part(t.tableName)}`}.jsonl`;
}

/** A directory for an export: new, or empty — never one that holds an export already (a run stopped half-way would leave its old manifest beside new files). */
function prepareDirectory(dir: string, tenant: TenantId): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new MultitenantError(`${dir} is a file, not a directory: export into a new or empty directory; nothing was exported`, {
      operation: 'exportTenant',
      tenant,
    });
  }
  if (existsSync(dir)) {
    const held = readdirSync(dir);
    if (held.length > 0) {
      throw new MultitenantError(
        `${dir} is not empty (${held.slice(0, 3).join(', ')}${held.length > 3 ? ', ...' : ''}): export into a new or empty directory, so that an export is never mixed with an older one; nothing was exported`,
        { operation: 'exportTenant', tenant },
      );
    }
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    // (a dangling link, a parent that is a file, no permission)
    throw new MultitenantError(`${dir} cannot be made a directory (${(err as Error).message}); nothing was exported`, {
      operation: 'exportTenant',
      tenant,
    });
  }
}

/**
 * Exports every row of one tenant — every tenant model's table, parents before children — to a directory
 * or a stream, and returns the manifest (also written). Runs under that tenant (with `rls: true`, the
 * tenant's own setting: no bypass); on Citus every page is a router statement. Global tables and files
 * outside the database are not included (docs/lifecycle.md).
 * @example
 * const manifest = await exportTenant(sequelize, 7, { to: './exports/store-7' });
 * manifest.tables.map((t) => `${t.table}: ${t.rows}`);
 */
export async function exportTenant(sequelize: Sequelize, tenant: unknown, options: ExportTenantOptions): Promise<TenantManifest> {
  const operation = 'exportTenant';
  checkOptions(
    operation,
    options,
    { batchSize: 'positive integer', onProgress: 'function', model: 'function', signal: 'signal' },
    'nothing was sent',
    {
      allowed: ['to'],
    },
  );
  const one = lifecycleTenant(sequelize, tenant, operation);
  const to = options?.to as unknown;
  if ((typeof to !== 'string' || to.trim() === '') && typeof (to as NodeJS.WritableStream)?.write !== 'function') {
    throw new MultitenantError('it needs { to }: a directory or a writable stream', { operation, tenant: one.id });
  }
  const batchSize = options.batchSize ?? 1000;
  return withTenant(one.id, async () => {
    const tables = await tenantTablesInOrder(sequelize, operation, { model: options.model });
    assertFitsTables(one, tables, operation);
    return sequelize.transaction({ isolationLevel: Transaction.ISOLATION_LEVELS.REPEATABLE_READ }, async (transaction) => {
      if (!(await tenantExists(sequelize, tables, one, transaction))) {
        throw new MultitenantError(`tenant ${String(one.id)} does not exist: nothing was exported`, { operation, tenant: one.id });
      }
      const dir = typeof options.to === 'string' ? options.to : undefined;
      if (dir) prepareDirectory(dir, one.id);
      const stream = dir ? undefined : new Sink(options.to as Emitting);
      try {
        const manifest: TenantManifest = {
          format: MANIFEST_FORMAT,
          version: 1,
          library: libraryVersion(),
          tenant: one.value,
          exportedAt: new Date().toISOString(),
          tables: [],
        };
        if (stream) {
          const { tenant: id, library, exportedAt } = manifest;
          await stream.write(`${JSON.stringify(['export', { format: MANIFEST_FORMAT, version: 1, tenant: id, library, exportedAt }])}\n`);
        }
        let total = 0;
        for (const t of tables) {
          const entry: TenantExportTable = {
            table: t.name,
            model: t.model.name,
            tenantColumn: t.column,
            key: [...t.key],
            file: fileOf(t),
            rows: 0,
            sha256: '',
          };
          const hash = createHash('sha256');
          const out = dir ? await opened(join(dir, entry.file)) : (stream as Sink);
          if (!dir)
            await out.write(
              `${JSON.stringify(['table', { table: entry.table, model: entry.model, tenantColumn: entry.tenantColumn, key: entry.key }])}\n`,
            );
          try {
            const done = () => [...manifest.tables, entry];
            stopIfAborted(options.signal, operation, one, done(), INCOMPLETE);
            for await (const page of pages(sequelize, t, one, batchSize, transaction, operation)) {
              stopIfAborted(options.signal, operation, one, done(), INCOMPLETE);
              let text = '';
              for (const row of page) {
                hash.update(`${row.j}\n`);
                text += dir ? `${row.j}\n` : `["row",${row.j}]\n`;
              }
              await out.write(text);
              entry.rows += page.length;
              total += page.length;
              options.onProgress?.({ table: entry.table, rows: entry.rows, total });
            }
          } catch (err) {
            // (a file of a directory export is closed, not left open, when the export stops)
            if (dir) {
              out.release();
              out.stream.destroy?.();
            }
            throw err;
          }
          if (dir) await out.end();
          entry.sha256 = hash.digest('hex');
          manifest.tables.push(entry);
        }
        if (dir) {
          const out = await opened(join(dir, 'manifest.json'));
          await out.write(`${JSON.stringify(manifest, null, 2)}\n`);
          await out.end();
        } else await (stream as Sink).write(`${JSON.stringify(['manifest', manifest])}\n`);
        return manifest;
      } finally {
        stream?.release();
      }
    });
  });
}
