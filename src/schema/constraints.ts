// Foreign and unique keys in the catalog: the DDL that adds them, read back afterwards (a key decided
// on exists, or a MultitenantError says why not), and the table and column look-ups around them.
import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import type { ForeignKeySpec } from './foreign-keys';
import { bare, constraintName, ident, qualified, regclass, rows, run, runCitus, type SqlOptions, type TableName } from './sql';

/** The ALTER TABLE that adds one foreign key. */
export function foreignKeySql(sequelize: Sequelize, s: ForeignKeySpec): string {
  const cols = (c: string[]) => c.map((name) => ident(sequelize, name)).join(', ');
  return `ALTER TABLE ${qualified(sequelize, s.child)} ADD CONSTRAINT ${ident(sequelize, s.name)} FOREIGN KEY (${cols(s.columns)}) REFERENCES ${qualified(sequelize, s.parent)} (${cols(s.parentColumns)}) ON DELETE ${s.onDelete} ON UPDATE ${s.onUpdate}`;
}

export async function exists(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean> {
  const [r] = await rows<{ t: string | null }>(sequelize, `SELECT to_regclass(${regclass(sequelize, table)})::text AS t`, options);
  return !!r?.t;
}

/** Makes sure `table` has a unique key (or primary key) on exactly `columns`; adds `UNIQUE (columns)` if not. */
export async function ensureUniqueKey(
  sequelize: Sequelize,
  table: TableName,
  columns: string[],
  options: SqlOptions = {},
): Promise<boolean> {
  const sorted = [...columns].sort();
  const found = await rows(
    sequelize,
    `SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(${regclass(sequelize, table)}) AND i.indisunique AND i.indpred IS NULL
       AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
         = ARRAY[${sorted.map((c) => `'${c.replace(/'/g, "''")}'`).join(', ')}]::text[]`,
    options,
  );
  if (found.length > 0) return false;
  await run(
    sequelize,
    `ALTER TABLE ${qualified(sequelize, table)} ADD CONSTRAINT ${ident(sequelize, constraintName(bare(table), ...columns, 'key'))} UNIQUE (${columns.map((c) => ident(sequelize, c)).join(', ')})`,
    options,
  );
  return true;
}

interface ForeignKeyRow {
  name: string;
  columns: string[];
  parent_columns: string[];
  same_parent: boolean;
}

/** The foreign keys of `table`, with their columns in key order (names as PostgreSQL stores them). */
async function foreignKeysOf(sequelize: Sequelize, table: TableName, parent: TableName, options: SqlOptions): Promise<ForeignKeyRow[]> {
  const columns = (key: string, rel: string) =>
    `(SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.${key}) WITH ORDINALITY AS k(n, i) JOIN pg_attribute a ON a.attrelid = c.${rel} AND a.attnum = k.n)`;
  return rows<ForeignKeyRow>(
    sequelize,
    `SELECT c.conname::text AS name, ${columns('conkey', 'conrelid')} AS columns, ${columns('confkey', 'confrelid')} AS parent_columns,
       c.confrelid = to_regclass(${regclass(sequelize, parent)}) AS same_parent
     FROM pg_constraint c WHERE c.conrelid = to_regclass(${regclass(sequelize, table)}) AND c.contype = 'f'`,
    options,
  );
}

const sameList = (a: unknown, b: string[]) => Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
const matches = (row: ForeignKeyRow, s: ForeignKeySpec) =>
  row.same_parent && sameList(row.columns, s.columns) && sameList(row.parent_columns, s.parentColumns);

/**
 * Adds a foreign key unless one with the same columns to the same parent columns exists; for composite
 * tenant keys, the parent's unique key first. A key decided on must exist afterwards: a constraint of
 * that name with another definition, or a key that is still missing after the ALTER TABLE, is a
 * MultitenantError (never a key silently skipped).
 */
export async function addForeignKey(sequelize: Sequelize, s: ForeignKeySpec, options: SqlOptions = {}): Promise<boolean> {
  const existing = await foreignKeysOf(sequelize, s.child, s.parent, options);
  if (existing.some((row) => matches(row, s))) return false;
  const refuse = (why: string) =>
    new MultitenantError(`the foreign key ${foreignKeySql(sequelize, s)} (${s.source}) ${why}`, {
      model: s.model,
      operation: s.operation ?? 'sync',
    });
  const [clash] = await rows<{ def: string }>(
    sequelize,
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = '${s.name.replace(/'/g, "''")}' AND conrelid = to_regclass(${regclass(sequelize, s.child)})`,
    options,
  );
  if (clash)
    throw refuse(`cannot be created: a constraint named ${ident(sequelize, s.name)} already holds ${clash.def}. Rename one of them`);
  if (s.composite) await ensureUniqueKey(sequelize, s.parent, s.parentColumns, options);
  await runCitus(sequelize, foreignKeySql(sequelize, s), s.model, options, s.operation ?? 'sync');
  const after = await foreignKeysOf(sequelize, s.child, s.parent, options);
  if (!after.some((row) => matches(row, s))) throw refuse('was sent but is not in the catalog afterwards');
  return true;
}

/** True when `table` has every one of `columns`. */
export async function hasColumns(sequelize: Sequelize, table: TableName, columns: string[], options: SqlOptions): Promise<boolean> {
  const found = await rows<{ n: number }>(
    sequelize,
    `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass(${regclass(sequelize, table)}) AND attnum > 0 AND NOT attisdropped
       AND attname::text = ANY(ARRAY[${columns.map((c) => `'${c.replace(/'/g, "''")}'`).join(', ')}]::text[])`,
    options,
  );
  return (found[0]?.n ?? 0) === new Set(columns).size;
}
