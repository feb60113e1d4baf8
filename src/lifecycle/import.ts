// importTenant: the way back from exportTenant. Reads a directory or a stream an export wrote, inserts
// every row in the export's order (parents first) inside one transaction, under that tenant — every row
// must carry it — and commits only when every table's row count and SHA-256 match the manifest.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { withTenant } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { checkOptions } from '../options';
import { hasCitus, ident } from '../schema/sql';
import type { TenantId } from '../tenant';
import type { LifecycleProgress, TenantManifest } from './export';
import { insertRows, writesValues } from './rows';
import { columnsOf, type TableColumn, type TenantTable, tenantTablesInOrder } from './tables';
import {
  assertFitsTables,
  type LifecycleTenant,
  lifecycleTenant,
  MANIFEST_FORMAT,
  sameTenantIn,
  stopIfAborted,
  tenantExists,
} from './tenant';

/** Options of `importTenant`: `{ batchSize: 5000, onProgress }`. */
export interface ImportTenantOptions {
  /** Rows per INSERT (default 1000). */
  batchSize?: number;
  onProgress?: (progress: LifecycleProgress) => void;
  /** With several tenant tables (stores and orgs): the one whose tenant this is. */
  model?: AnyModelStatic;
  /**
   * The tenant this import may write: an export of any other is refused before anything is written. Pass
   * it whenever the export comes from outside (a customer's upload): a manifest's checksums are no
   * signature, and an edited export names whichever tenant its editor chose.
   */
  tenant?: unknown;
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

/** The longest line an import reads: a row of PostgreSQL's JSON is at most a field's 1 GB as text, but what Node holds as one string stops at 512 MiB. */
const MAX_LINE = 256 * 2 ** 20;

/**
 * The lines of a stream (without their `\n` or `\r\n`), none longer than MAX_LINE: a file or a
 * stream with no line end (`/dev/zero`, a broken upload) is refused before it fills the memory.
 */
async function* lines(input: NodeJS.ReadableStream): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  // the line being read, in pieces (each piece is searched for a line end once)
  let parts: string[] = [];
  let size = 0;
  const line = (last: string) => {
    parts.push(last);
    const whole = parts.join('');
    parts = [];
    size = 0;
    return whole.endsWith('\r') ? whole.slice(0, -1) : whole;
  };
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    let text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n')) {
      yield line(text.slice(0, at));
      text = text.slice(at + 1);
    }
    if (text) {
      parts.push(text);
      size += text.length;
      if (size > MAX_LINE) refuse(`a line of the export is longer than ${MAX_LINE / 2 ** 20} MiB: this is not an export`);
    }
  }
  const rest = line(decoder.end());
  if (rest) yield rest;
}

/** A manifest's file name, if it names a file of the export's own directory (not `../..`, not a path elsewhere). */
function inside(file: unknown): string {
  if (typeof file !== 'string' || file === '' || basename(file) !== file || file === '.' || file === '..' || !file.endsWith('.jsonl')) {
    refuse(`the manifest names ${JSON.stringify(file)} as a table's file: an export's files are <table>.jsonl in its own directory`);
  }
  return file;
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
    // a regular file of the directory itself: not a link to elsewhere, not a pipe that never ends
    let kind: string;
    try {
      const st = lstatSync(join(dir, file));
      kind = st.isFile() ? 'file' : st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file';
    } catch {
      kind = 'missing';
    }
    if (kind !== 'file')
      refuse(
        `${file}, which the manifest names, is ${kind === 'missing' ? 'missing from the export' : kind}: an export's files are regular files of its directory`,
      );
    for await (const line of lines(createReadStream(join(dir, file)))) if (line) yield line;
  }
  async function* tables() {
    for (const t of manifest.tables) yield { table: t.table, rows: rows(inside(t.file)) };
  }
  return { header: { tenant: manifest.tenant }, tables: tables(), manifest: () => manifest, known: manifest };
}

async function fromStream(input: NodeJS.ReadableStream): Promise<Source> {
  const read = lines(input)[Symbol.asyncIterator]();
  const first = await read.next();
  const head = first.done ? undefined : (parse(first.value) as [string, { format?: string; tenant: TenantId }] | undefined);
  if (head?.[0] !== 'export' || head[1]?.format !== MANIFEST_FORMAT)
    refuse('the stream is not an export of sequelize-multitenant (no ["export", ...] line first)');
  let manifest: TenantManifest | undefined;
  let pending: string | undefined;
  async function* rows(): AsyncGenerator<string> {
    for (;;) {
      const next = await read.next();
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
      const line = pending ?? (await read.next()).value;
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

/** The rows of a batch whose tenant Node cannot read exactly, checked by PostgreSQL: each must be the import's tenant. */
async function assertOneTenant(
  sequelize: Sequelize,
  t: TenantTable,
  columns: readonly TableColumn[],
  batch: readonly string[],
  one: LifecycleTenant,
  transaction: Transaction,
  table: string,
): Promise<void> {
  const type = columns.find((c) => c.name === t.column)?.type ?? 'text';
  const column = ident(sequelize, t.column, true);
  const [other] = await sequelize.query<{ v: string | null }>(
    `SELECT r.${column}::text AS v FROM json_populate_recordset(NULL::${t.quoted}, $1::json) AS r WHERE r.${column} IS DISTINCT FROM $2::${type} LIMIT 1`,
    { bind: [`[${batch.join(',')}]`, one.value], type: QueryTypes.SELECT, transaction },
  );
  if (other) refuse(`a row of ${table} belongs to tenant ${String(other.v)}, not to the export's tenant ${String(one.id)}`, one.id);
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
    { allowed: ['tenant'] },
  );
  const pinned = options.tenant === undefined ? undefined : lifecycleTenant(sequelize, options.tenant, operation);
  const source = typeof from === 'string' ? fromDirectory(from) : await fromStream(from);
  const one: LifecycleTenant = lifecycleTenant(sequelize, source.header.tenant, operation);
  const batchSize = options.batchSize ?? 1000;
  return withTenant(one.id, async () => {
    const tables = await tenantTablesInOrder(sequelize, operation, { model: options.model });
    assertFitsTables(one, tables, operation);
    if (pinned && !sameTenantIn(tables)(pinned.id, one.id)) {
      refuse(`the export is of tenant ${String(one.id)}, and this import may write tenant ${String(pinned.id)} only`, pinned.id);
    }
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
        const columns = await columnsOf(sequelize, t, transaction);
        const ours = sameTenantIn([t]);
        const hash = createHash('sha256');
        let count = 0;
        let batch: string[] = [];
        let inexact = false;
        const insert = async () => {
          if (inexact) await assertOneTenant(sequelize, t, columns, batch, one, transaction, section.table);
          await insertRows(sequelize, t, columns, batch, one, transaction, write);
          inexact = false;
        };
        for await (const text of section.rows) {
          hash.update(`${text}\n`);
          const row = parse(text) as Record<string, unknown> | undefined;
          if (!row || typeof row !== 'object' || Array.isArray(row)) {
            // (its text is not repeated: it may be anything the file held)
            refuse(`line ${count + 1} of ${section.table} is not a row (${text.length} characters)`, one.id);
          }
          const value = row[t.column];
          // (a number JSON cannot hold exactly — a BIGINT id above 2^53 — is compared by PostgreSQL, below)
          if (typeof value === 'number' && !Number.isSafeInteger(value)) inexact = true;
          else if (value === null || value === undefined || !ours(value, one.id)) {
            refuse(`a row of ${section.table} belongs to tenant ${String(value)}, not to the export's tenant ${String(one.id)}`, one.id);
          }
          batch.push(text);
          count++;
          if (batch.length >= batchSize) {
            stopIfAborted(options.signal, operation, one, [...seen, { table: section.table, rows: count - batch.length }], ROLLED_BACK);
            await insert();
            total += batch.length;
            batch = [];
            options.onProgress?.({ table: section.table, rows: count, total });
          }
        }
        if (batch.length > 0) {
          stopIfAborted(options.signal, operation, one, [...seen, { table: section.table, rows: count - batch.length }], ROLLED_BACK);
          await insert();
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
