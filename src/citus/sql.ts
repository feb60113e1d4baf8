import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';

/** A table as Sequelize names it: 'products', or { tableName, schema }. */
export type TableName = string | { tableName: string; schema?: string };

export interface SqlOptions {
  transaction?: Transaction | null;
  logging?: boolean | ((sql: string) => void);
}

export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** `"schema"."table"` or `"table"`. */
export function qualified(table: TableName): string {
  if (typeof table === 'string') return ident(table);
  return table.schema ? `${ident(table.schema)}.${ident(table.tableName)}` : ident(table.tableName);
}

/** The text form a regclass argument takes: `'"schema"."table"'`, as a SQL string literal. */
export function regclass(table: TableName): string {
  return `'${qualified(table).replace(/'/g, "''")}'`;
}

export function bare(table: TableName): string {
  return typeof table === 'string' ? table : table.tableName;
}

/** Postgres truncates identifiers at 63 bytes: keep names deterministic and within it. */
export function constraintName(...parts: string[]): string {
  const name = parts.join('_');
  if (name.length <= 63) return name;
  let h = 0;
  for (const c of name) h = (Math.imul(h, 31) + (c.codePointAt(0) ?? 0)) | 0;
  return `${name.slice(0, 54)}_${(h >>> 0).toString(16).padStart(8, '0')}`;
}

export async function rows<T>(sequelize: Sequelize, sql: string, options: SqlOptions = {}): Promise<T[]> {
  return sequelize.query(sql, {
    type: QueryTypes.SELECT,
    transaction: options.transaction ?? undefined,
    logging: options.logging,
  }) as Promise<T[]>;
}

export async function run(sequelize: Sequelize, sql: string, options: SqlOptions = {}): Promise<void> {
  await sequelize.query(sql, { transaction: options.transaction ?? undefined, logging: options.logging });
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
