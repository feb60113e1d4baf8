// importTenant: the way back from exportTenant. Reads a directory or a stream an export wrote, inserts
// every row in the export's order (parents first) inside one transaction, under that tenant — every row
// must carry it — and commits only when every table's row count and SHA-256 match the manifest.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Sequelize } from 'sequelize';
import { withTenant } from '../context';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, tenantMeta } from '../models';
import { checkOptions } from '../options';
import { hasCitus } from '../schema/sql';
import { columnKey, type TenantId } from '../tenant';
import type { LifecycleProgress, TenantManifest } from './export';
import { insertRows, writesValues } from './rows';
import { columnsOf, tenantTablesInOrder } from './tables';
import { assertFitsTables, type LifecycleTenant, lifecycleTenant, MANIFEST_FORMAT, stopIfAborted, tenantExists } from './tenant';

/** Options of `importTenant`: `{ batchSize: 5000, onProgress }`. */
export interface ImportTenantOptions {
  /** Rows per INSERT (default 1000). */
  batchSize?: number;
  onProgress?: (progress: LifecycleProgress) => void;
  /** With several tenant tables (stores and orgs): the one whose tenant this is. */
  model?: AnyModelStatic;
  /** Stops between two batches when aborted (`LifecycleInterruptedError`): the transaction is rolled back, nothing is imported. */
  signal?: AbortSignal;
}

const operation = 'importTenant';
const ROLLED_BACK = 'rolled back, nothing was imported';

function refuse(message: string, tenant?: TenantId): never {
  throw new MultitenantError(`${message}; nothing was imported`, { operation, tenant });
}

function checkManifest(value: unknown): TenantManifest {
  const m = value as TenantManifest;
  if (!m || m.format !== MANIFEST_FORMAT || m.version !== 1 || !Array.isArray(m.tables))
    refuse('this is not an export of sequelize-multitenant (no manifest of format 1)');
  return m;
}

/** A line's JSON, or undefined when it is none. */
function parse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** Refuses a table whose rows do not match its manifest entry. */
function compare(
  entry: { table: string; rows: number; sha256: string },
  got: { rows: number; sha256: string } | undefined,
  tenant: TenantId,
): void {
  if (got && got.rows === entry.rows && got.sha256 === entry.sha256) return;
  refuse(
    `${entry.table} does not match the manifest (rows ${got?.rows ?? 0} of ${entry.rows}${got && got.sha256 !== entry.sha256 ? ', checksum differs' : ''}): the export is incomplete or was changed`,
    tenant,
  );
}

/** The rows of one table, as lines of JSON text, from wherever the export put them. */
interface Source {
  header: { tenant: TenantId };
  tables: AsyncGenerator<{ table: string; rows: AsyncGenerator<string> }>;
  manifest: () => TenantManifest;
  /** The manifest when it comes first (a directory). */
  known?: TenantManifest;
}

function fromDirectory(dir: string): Source {
  let manifest: TenantManifest;
  try {
    manifest = checkManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
  } catch (err) {
    if (err instanceof MultitenantError) throw err;
    refuse(`${dir} holds no readable manifest.json (${(err as Error).message})`);
  }
  async function* rows(file: string): AsyncGenerator<string> {
    for await (const line of createInterface({ input: createReadStream(join(dir, file)), crlfDelay: Number.POSITIVE_INFINITY }))
      if (line) yield line;
  }
  async function* tables() {
    for (const t of manifest.tables) yield { table: t.table, rows: rows(t.file) };
  }
  return { header: { tenant: manifest.tenant }, tables: tables(), manifest: () => manifest, known: manifest };
}

async function fromStream(input: NodeJS.ReadableStream): Promise<Source> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })[Symbol.asyncIterator]();
  const first = await lines.next();
  const head = first.done ? undefined : (parse(first.value) as [string, { format?: string; tenant: TenantId }] | undefined);
  if (head?.[0] !== 'export' || head[1]?.format !== MANIFEST_FORMAT)
    refuse('the stream is not an export of sequelize-multitenant (no ["export", ...] line first)');
  let manifest: TenantManifest | undefined;
  let pending: string | undefined;
  async function* rows(): AsyncGenerator<string> {
    for (;;) {
      const next = await lines.next();
      if (next.done) return;
      const line = next.value;
      if (!line) continue;
      if (line.startsWith('["row",') && line.endsWith(']')) {
        yield line.slice('["row",'.length, -1);
        continue;
      }
      pending = line;
      return;
    }
  }
  async function* tables() {
    for (;;) {
      const line = pending ?? (await lines.next()).value;
      pending = undefined;
      if (line === undefined) return;
      if (!line) continue;
      const [kind, body] = (parse(line) ?? []) as [string, { table: string }];
      if (kind === 'manifest') {
        manifest = checkManifest(body);
        return;
      }
      if (kind !== 'table') refuse(`unexpected line in the export: ${line.slice(0, 80)}`);
      yield { table: body.table, rows: rows() };
    }
  }
  return {
    header: { tenant: (head as [string, { tenant: TenantId }])[1].tenant },
    tables: tables(),
    manifest: () => manifest ?? refuse('the export ends without its manifest (cut short?)'),
  };
}

/**
 * Imports what `exportTenant` wrote (a directory or a stream) into a tenant that has no rows: every row
 * in the export's order, in one transaction, under that tenant (with `rls: true`, its own setting).
 * Every row must belong to the export's tenant; the row count and SHA-256 of every table must match the
 * manifest, else nothing is kept. Returns the manifest.
 * @example
 * await deleteTenant(sequelize, 7, { confirm: 7 });
 * await importTenant(sequelize, './exports/store-7'); // store 7's rows, as exported
 */
export async function importTenant(
  sequelize: Sequelize,
  from: string | NodeJS.ReadableStream,
  options: ImportTenantOptions = {},
): Promise<TenantManifest> {
  checkOptions(
    operation,
    options,
    { batchSize: 'positive integer', onProgress: 'function', model: 'function', signal: 'signal' },
    'nothing was sent',
  );
  const source = typeof from === 'string' ? fromDirectory(from) : await fromStream(from);
  const one: LifecycleTenant = lifecycleTenant(sequelize, source.header.tenant, operation);
  const batchSize = options.batchSize ?? 1000;
  return withTenant(one.id, async () => {
    const tables = await tenantTablesInOrder(sequelize, operation, { model: options.model });
    assertFitsTables(one, tables, operation);
    const byName = new Map(tables.map((t) => [t.name, t]));
    const write = { operation, values: writesValues(sequelize, await hasCitus(sequelize)), nothing: 'nothing was imported' };
    return sequelize.transaction(async (transaction) => {
      for (const t of tables) {
        if (await tenantExists(sequelize, [{ ...t, isTenantTable: false }], one, transaction)) {
          refuse(
            `tenant ${String(one.id)} already has rows in ${t.quoted}: importTenant restores into a tenant with none (deleteTenant first)`,
            one.id,
          );
        }
      }
      const seen: Array<{ table: string; rows: number; sha256: string }> = [];
      let total = 0;
      for await (const section of source.tables) {
        const t = byName.get(section.table);
        if (!t) refuse(`the export holds ${section.table}, which no tenant model of this instance is on`, one.id);
        const meta = tenantMeta(t.model);
        const columns = await columnsOf(sequelize, t, transaction);
        const want = meta ? columnKey(one.id, meta) : String(one.id);
        const hash = createHash('sha256');
        let count = 0;
        let batch: string[] = [];
        for await (const text of section.rows) {
          hash.update(`${text}\n`);
          const row = parse(text) as Record<string, unknown> | undefined;
          if (!row || typeof row !== 'object') refuse(`a line of ${section.table} is not a row: ${text.slice(0, 80)}`, one.id);
          const value = row[t.column];
          if (value === null || value === undefined || (meta ? columnKey(value, meta) : String(value)) !== want) {
            refuse(`a row of ${section.table} belongs to tenant ${String(value)}, not to the export's tenant ${String(one.id)}`, one.id);
          }
          batch.push(text);
          count++;
          if (batch.length >= batchSize) {
            stopIfAborted(options.signal, operation, one, [...seen, { table: section.table, rows: count - batch.length }], ROLLED_BACK);
            await insertRows(sequelize, t, columns, batch, one, transaction, write);
            total += batch.length;
            batch = [];
            options.onProgress?.({ table: section.table, rows: count, total });
          }
        }
        if (batch.length > 0) {
          stopIfAborted(options.signal, operation, one, [...seen, { table: section.table, rows: count - batch.length }], ROLLED_BACK);
          await insertRows(sequelize, t, columns, batch, one, transaction, write);
          total += batch.length;
          options.onProgress?.({ table: section.table, rows: count, total });
        }
        const got = { table: section.table, rows: count, sha256: hash.digest('hex') };
        // a directory's manifest is known up front: a table that does not match is refused before the next one
        const expected = source.known?.tables.find((e) => e.table === section.table);
        if (expected) compare(expected, got, one.id);
        seen.push(got);
      }
      const manifest = source.manifest();
      if (String(manifest.tenant) !== String(one.id))
        refuse(`the manifest names tenant ${String(manifest.tenant)}, the export's rows tenant ${String(one.id)}`, one.id);
      // nothing beside the manifest's tables: a table the manifest does not list, or rows of one table in two sections
      for (const [i, got] of seen.entries()) {
        const listed = manifest.tables.some((e) => e.table === got.table);
        if (!listed || seen.findIndex((s) => s.table === got.table) !== i) {
          refuse(`the export holds rows of ${got.table} ${listed ? 'in two sections' : 'that its manifest does not list'}`, one.id);
        }
      }
      // and each of them as its manifest says
      for (const entry of manifest.tables) {
        compare(
          entry,
          seen.find((s) => s.table === entry.table),
          one.id,
        );
      }
      return manifest;
    });
  });
}
