// SQL through Sequelize for the library's own DDL and catalog reads: identifiers quoted as Sequelize
// quotes them, constraint names within PostgreSQL's limit, and whether the database has Citus.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { runSchemaWork } from '../context';
import { MultitenantError } from '../errors';

/** A table as Sequelize names it: 'products', or { tableName, schema }. */
export type TableName = string | { tableName: string; schema?: string };

export interface SqlOptions {
  transaction?: Transaction | null;
  logging?: boolean | ((sql: string) => void);
}

interface Quoter {
  quoteIdentifier(identifier: string, force?: boolean): string;
  quoteTable(table: unknown): string;
}
const quoterOf = (sequelize: Sequelize): Quoter => sequelize.getQueryInterface().queryGenerator as unknown as Quoter;

/**
 * An identifier quoted as Sequelize quotes it in the SQL it sends itself (its query generator: the same
 * rules, `quoteIdentifiers: false` included), so that the library's DDL names the tables and columns
 * Sequelize's own statements name. `force`: quoted whatever the options (a name read from the catalog, exact).
 */
export const ident = (sequelize: Sequelize, name: string, force?: boolean): string => quoterOf(sequelize).quoteIdentifier(name, force);

/** `"schema"."table"` or `"table"`, by Sequelize's `quoteTable`. */
export function qualified(sequelize: Sequelize, table: TableName): string {
  return quoterOf(sequelize).quoteTable(table);
}

/** The text form a regclass argument takes: `'"schema"."table"'`, as a SQL string literal. */
export function regclass(sequelize: Sequelize, table: TableName): string {
  return `'${qualified(sequelize, table).replace(/'/g, "''")}'`;
}

/** A table's identity for comparisons: `schema.table` (`.table` in the default schema). */
export function tableKey(table: TableName): string {
  if (typeof table === 'string') return `.${table}`;
  return `${table.schema && table.schema !== 'public' ? table.schema : ''}.${table.tableName}`;
}

export function bare(table: TableName): string {
  return typeof table === 'string' ? table : table.tableName;
}

/** PostgreSQL's identifier limit: NAMEDATALEN - 1 bytes (UTF-8), longer names are cut there. */
const MAX_IDENTIFIER_BYTES = 63;

/** The longest prefix of `text` that fits in `bytes` UTF-8 bytes, cut at a character boundary. */
function clip(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const c of text) {
    const size = Buffer.byteLength(c);
    if (used + size > bytes) break;
    out += c;
    used += size;
  }
  return out;
}

/**
 * A deterministic constraint name within PostgreSQL's 63 bytes: measured in UTF-8 bytes (not UTF-16
 * characters), so that two long multibyte names never truncate to one; a longer name becomes a prefix
 * plus a hash of the whole.
 */
export function constraintName(...parts: string[]): string {
  const name = parts.join('_');
  if (Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES) return name;
  let h = 0;
  for (const c of name) h = (Math.imul(h, 31) + (c.codePointAt(0) ?? 0)) | 0;
  return `${clip(name, 54)}_${(h >>> 0).toString(16).padStart(8, '0')}`;
}

/** A catalog read of the library's (schema work: see context.ts). */
export async function rows<T>(sequelize: Sequelize, sql: string, options: SqlOptions = {}): Promise<T[]> {
  return runSchemaWork(
    () =>
      sequelize.query(sql, {
        type: QueryTypes.SELECT,
        transaction: options.transaction ?? undefined,
        logging: options.logging,
      }) as Promise<T[]>,
  );
}

/** A statement of the library's own DDL (schema work: see context.ts). */
export async function run(sequelize: Sequelize, sql: string, options: SqlOptions = {}): Promise<void> {
  await runSchemaWork(() => sequelize.query(sql, { transaction: options.transaction ?? undefined, logging: options.logging }));
}

const citusCache = new WeakMap<Sequelize, boolean>();

/** True when the database has the citus extension (cached per Sequelize instance once true/false is known). */
export async function hasCitus(sequelize: Sequelize, options: SqlOptions & { refresh?: boolean } = {}): Promise<boolean> {
  if (sequelize.getDialect() !== 'postgres') return false;
  const cached = citusCache.get(sequelize);
  if (cached !== undefined && !options.refresh) return cached;
  const found = await rows(sequelize, `SELECT 1 FROM pg_extension WHERE extname = 'citus'`, options);
  citusCache.set(sequelize, found.length > 0);
  return found.length > 0;
}

/** Runs a Citus statement for `model`; a refusal becomes a MultitenantError naming the model, the statement and Citus' reason. */
export async function runCitus(
  sequelize: Sequelize,
  sql: string,
  model: string | undefined,
  options: SqlOptions,
  operation = 'sync',
): Promise<void> {
  try {
    await run(sequelize, sql, options);
  } catch (err) {
    const original = (err as { original?: { message?: string; detail?: string; hint?: string } }).original;
    const said = [original?.message ?? (err as Error).message, original?.detail, original?.hint].filter(Boolean).join('. ');
    throw new MultitenantError(`Citus refused ${sql}: ${said}`, { model, operation });
  }
}
