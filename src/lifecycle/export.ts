// exportTenant: every row of one tenant, table by table in foreign-key order, streamed with backpressure
// — read in pages by primary key inside one REPEATABLE READ transaction (one snapshot for all tables;
// memory holds one page), each row as PostgreSQL's own JSON of it (`row_to_json`: exact numerics, dates
// and bytea as PostgreSQL writes them), with a manifest of counts and SHA-256 checksums.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Sequelize, Transaction } from 'sequelize';
import { withTenant } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { checkOptions } from '../options';
import type { TenantId } from '../tenant';
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

async function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream as unknown as NodeJS.EventEmitter, 'drain');
}

async function close(stream: NodeJS.WritableStream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    (stream as unknown as NodeJS.EventEmitter).once('error', reject);
    stream.end(() => resolve());
  });
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
  if (!options || (typeof options.to !== 'string' && typeof (options.to as NodeJS.WritableStream)?.write !== 'function')) {
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
      if (dir) mkdirSync(dir, { recursive: true });
      const stream = dir ? undefined : (options.to as NodeJS.WritableStream);
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
        await write(stream, `${JSON.stringify(['export', { format: MANIFEST_FORMAT, version: 1, tenant: id, library, exportedAt }])}\n`);
      }
      let total = 0;
      for (const t of tables) {
        const entry: TenantExportTable = {
          table: t.name,
          model: t.model.name,
          tenantColumn: t.column,
          key: [...t.key],
          file: `${t.name}.jsonl`,
          rows: 0,
          sha256: '',
        };
        const hash = createHash('sha256');
        const out = dir ? createWriteStream(join(dir, entry.file)) : (stream as NodeJS.WritableStream);
        if (!dir)
          await write(
            out,
            `${JSON.stringify(['table', { table: entry.table, model: entry.model, tenantColumn: entry.tenantColumn, key: entry.key }])}\n`,
          );
        const done = () => [...manifest.tables, entry];
        stopIfAborted(options.signal, operation, one, done(), INCOMPLETE);
        for await (const page of pages(sequelize, t, one, batchSize, transaction, operation)) {
          stopIfAborted(options.signal, operation, one, done(), INCOMPLETE);
          let text = '';
          for (const row of page) {
            hash.update(`${row.j}\n`);
            text += dir ? `${row.j}\n` : `["row",${row.j}]\n`;
          }
          await write(out, text);
          entry.rows += page.length;
          total += page.length;
          options.onProgress?.({ table: entry.table, rows: entry.rows, total });
        }
        if (dir) await close(out);
        entry.sha256 = hash.digest('hex');
        manifest.tables.push(entry);
      }
      if (dir) {
        const out = createWriteStream(join(dir, 'manifest.json'));
        await write(out, `${JSON.stringify(manifest, null, 2)}\n`);
        await close(out);
      } else await write(stream as NodeJS.WritableStream, `${JSON.stringify(['manifest', manifest])}\n`);
      return manifest;
    });
  });
}
