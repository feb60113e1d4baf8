import type { QueryInterface, Sequelize, Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import { notify } from '../notice';
import { checkOptions, type OptionSpec, TRANSACTION_AND_NOTICE } from '../options';
import { distributeWithRls } from '../rls/policy';
import { normalizeAction } from '../schema/actions';
import { addForeignKey } from '../schema/constraints';
import type { ForeignKeySpec } from '../schema/foreign-keys';
import { bare, constraintName, hasCitus, regclass, rows, runCitus, type TableName } from '../schema/sql';
import type { NoticeHandler } from '../state';
import { distributionOf, distributionSql, referenceSql } from './distribution';

/** Options shared by the migration helpers. */
export interface MigrationOptions {
  /** Run inside this transaction (umzug / sequelize-cli migrations often pass one). */
  transaction?: Transaction;
  /** Where the one-line notice goes when the database is plain PostgreSQL. Default: `console.warn`; `false`: silent. */
  notice?: NoticeHandler;
}

type Target = Sequelize | QueryInterface;
const sequelizeOf = (target: Target): Sequelize => ('sequelize' in target ? (target as QueryInterface).sequelize : target) as Sequelize;

async function citusOr(target: Target, what: string, options: MigrationOptions): Promise<Sequelize | undefined> {
  const sequelize = sequelizeOf(target);
  if (await hasCitus(sequelize, { transaction: options.transaction, refresh: true })) return sequelize;
  notify(sequelize, `${what}: no citus extension in this database, nothing to do (plain PostgreSQL)`, options.notice, 'info');
  return undefined;
}

async function distributed(sequelize: Sequelize, table: TableName, options: MigrationOptions): Promise<boolean> {
  return (
    (await rows(sequelize, `SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(${regclass(sequelize, table)})`, options))
      .length > 0
  );
}

/** The columns of a table, or undefined when it does not exist. */
async function columnsOf(sequelize: Sequelize, table: TableName, options: MigrationOptions): Promise<string[] | undefined> {
  const found = await rows<{ name: string | null }>(
    sequelize,
    `SELECT a.attname::text AS name FROM (SELECT to_regclass(${regclass(sequelize, table)}) AS r) t LEFT JOIN pg_attribute a ON a.attrelid = t.r AND a.attnum > 0 AND NOT a.attisdropped WHERE t.r IS NOT NULL`,
    options,
  );
  return found.length === 0 ? undefined : found.map((r) => r.name).filter((n): n is string => !!n);
}

const refusal = (operation: string, table: TableName, message: string) =>
  new MultitenantError(`${message}; nothing was changed`, { model: bare(table), operation });

/**
 * Distributes `table` on its tenant column, colocated with the tenant table (Citus
 * `create_distributed_table`). Run it right after creating the table, parents first. A no-op with a
 * notice on plain PostgreSQL and for a table already distributed. Resolves to whether it distributed.
 * A missing table or column, or a `colocateWith` table that is not distributed, is a MultitenantError
 * before any statement; so is a refusal from Citus (with its message).
 * @example
 * await queryInterface.createTable('products', { ... });
 * await createDistributedTable(queryInterface, 'products', 'store_id', { colocateWith: 'stores' });
 */
export async function createDistributedTable(
  target: Target,
  table: TableName,
  tenantColumn: string,
  options: MigrationOptions & { colocateWith?: TableName } = {},
): Promise<boolean> {
  const operation = 'createDistributedTable';
  checkOptions(operation, options, { ...TRANSACTION_AND_NOTICE, colocateWith: 'table' }, 'nothing was sent');
  const sequelize = await citusOr(target, `${operation}(${bare(table)})`, options);
  if (!sequelize) return false;
  const columns = await columnsOf(sequelize, table, options);
  if (!columns) throw refusal(operation, table, `table ${bare(table)} does not exist: create it first`);
  if (!columns.includes(tenantColumn))
    throw refusal(operation, table, `table ${bare(table)} has no column ${tenantColumn} to distribute on`);
  const current = await distributionOf(sequelize, table, options);
  if (current && current.kind !== 'local') {
    // already distributed: exactly so (nothing to do), or otherwise (refused, with the statement that fixes it)
    const parent = options.colocateWith ? await distributionOf(sequelize, options.colocateWith, options) : undefined;
    if (current.kind === 'hash' && current.column === tenantColumn && (!parent || parent.colocation === current.colocation)) return false;
    throw refusal(
      operation,
      table,
      current.kind === 'hash' && current.column === tenantColumn
        ? `${bare(table)} is already distributed on ${tenantColumn} but not colocated with ${bare(options.colocateWith as TableName)}: SELECT alter_distributed_table(${regclass(sequelize, table)}, colocate_with => ${regclass(sequelize, options.colocateWith as TableName)})`
        : `${bare(table)} is already ${current.kind === 'reference' ? 'a reference table' : `distributed on ${current.column}`}: SELECT undistribute_table(${regclass(sequelize, table)}) first`,
    );
  }
  if (options.colocateWith && (await distributionOf(sequelize, options.colocateWith, options))?.kind !== 'hash') {
    throw refusal(
      operation,
      table,
      `colocateWith ${bare(options.colocateWith)} is not a distributed table: distribute it first (parents before children)`,
    );
  }
  await distributeWithRls(sequelize, table, tenantColumn, options, () =>
    runCitus(sequelize, distributionSql(sequelize, table, tenantColumn, options.colocateWith), bare(table), options, operation),
  );
  return true;
}

/**
 * Makes `table` a Citus reference table (`create_reference_table`): a global table copied to every node,
 * joinable from every tenant table. A no-op with a notice on plain PostgreSQL or when already done.
 * @example
 * await createReferenceTable(queryInterface, 'countries');
 */
export async function createReferenceTable(target: Target, table: TableName, options: MigrationOptions = {}): Promise<boolean> {
  const operation = 'createReferenceTable';
  checkOptions(operation, options, TRANSACTION_AND_NOTICE, 'nothing was sent');
  const sequelize = await citusOr(target, `${operation}(${bare(table)})`, options);
  if (!sequelize) return false;
  if (!(await columnsOf(sequelize, table, options)))
    throw refusal(operation, table, `table ${bare(table)} does not exist: create it first`);
  const current = await distributionOf(sequelize, table, options);
  if (current?.kind === 'reference') return false;
  if (current && current.kind !== 'local') {
    throw refusal(
      operation,
      table,
      `${bare(table)} is already distributed on ${current.column}: SELECT undistribute_table(${regclass(sequelize, table)}) first`,
    );
  }
  await runCitus(sequelize, referenceSql(sequelize, table), bare(table), options, operation);
  return true;
}

/**
 * Turns a distributed or reference table back into a local table (Citus `undistribute_table`), e.g. in a
 * migration's `down`. A table joined to others by foreign keys cannot go alone: pass
 * `cascadeViaForeignKeys: true` to take every table connected to it by foreign keys along (Citus'
 * `cascade_via_foreign_keys`), or drop those keys first; without either it is a MultitenantError naming
 * them, before any statement. A no-op with a notice on plain PostgreSQL or for a table that is not distributed.
 * @example
 * await undistributeTable(queryInterface, 'purchases', { cascadeViaForeignKeys: true });
 */
export async function undistributeTable(
  target: Target,
  table: TableName,
  options: MigrationOptions & { cascadeViaForeignKeys?: boolean } = {},
): Promise<boolean> {
  const operation = 'undistributeTable';
  checkOptions(operation, options, { ...TRANSACTION_AND_NOTICE, cascadeViaForeignKeys: 'boolean' }, 'nothing was sent');
  const sequelize = await citusOr(target, `${operation}(${bare(table)})`, options);
  if (!sequelize || !(await distributed(sequelize, table, options))) return false;
  if (!options.cascadeViaForeignKeys) {
    const keys = await rows<{ name: string; other: string }>(
      sequelize,
      `SELECT conname::text AS name, (CASE WHEN conrelid = to_regclass(${regclass(sequelize, table)}) THEN confrelid ELSE conrelid END)::regclass::text AS other
         FROM pg_constraint WHERE contype = 'f' AND to_regclass(${regclass(sequelize, table)}) IN (conrelid, confrelid) AND conrelid <> confrelid ORDER BY 1`,
      options,
    );
    if (keys.length > 0) {
      throw refusal(
        operation,
        table,
        `${bare(table)} is joined by foreign keys (${keys.map((k) => `${k.name} with ${k.other}`).join(', ')}): pass { cascadeViaForeignKeys: true } to undistribute those tables with it, or drop the keys first`,
      );
    }
  }
  const cascade = options.cascadeViaForeignKeys ? ', cascade_via_foreign_keys => true' : '';
  await runCitus(sequelize, `SELECT undistribute_table(${regclass(sequelize, table)}${cascade})`, bare(table), options, operation);
  return true;
}

/** What `addTenantForeignKey` needs. */
export interface TenantForeignKeyOptions extends MigrationOptions {
  /** The tenant column, in the child and the parent table: `'store_id'`. */
  tenantColumn: string;
  /** The child's key column(s) without the tenant column: `['product_id']`. */
  columns: string[];
  /** The parent table and its key column(s) without the tenant column: `{ table: 'products', columns: ['id'] }`. */
  references: { table: TableName; columns: string[]; tenantColumn?: string };
  /** `CASCADE`, `RESTRICT` or `NO ACTION` (default). SET NULL / SET DEFAULT would clear the tenant column. */
  onDelete?: 'CASCADE' | 'RESTRICT' | 'NO ACTION';
  /** `RESTRICT` or `NO ACTION` (default): Citus refuses ON UPDATE CASCADE on a key with the distribution column. */
  onUpdate?: 'RESTRICT' | 'NO ACTION';
  /** Constraint name; default `<table>_<tenant>_<columns>_fkey`. */
  name?: string;
}

const FOREIGN_KEY_OPTIONS: OptionSpec = {
  ...TRANSACTION_AND_NOTICE,
  tenantColumn: 'string',
  columns: 'string array',
  references: 'object',
  onDelete: 'string',
  onUpdate: 'string',
  name: 'string',
};

/**
 * Adds `FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id)`, first making sure the
 * parent has a unique key on `(store_id, id)`. Works on PostgreSQL and Citus (between colocated
 * distributed tables). Resolves to false when the same key (columns and parent columns) already exists;
 * a MultitenantError, before any statement, for an action that would clear the tenant column, a missing
 * table or column, or a constraint of that name holding another key.
 * @example
 * await addTenantForeignKey(queryInterface, 'purchases', {
 *   tenantColumn: 'store_id', columns: ['product_id'], references: { table: 'products', columns: ['id'] },
 *   onDelete: 'CASCADE',
 * });
 */
export async function addTenantForeignKey(target: Target, table: TableName, options: TenantForeignKeyOptions): Promise<boolean> {
  const sequelize = sequelizeOf(target);
  const operation = 'addTenantForeignKey';
  checkOptions(operation, options, FOREIGN_KEY_OPTIONS, 'nothing was sent', { required: ['tenantColumn', 'columns', 'references'] });
  checkOptions(operation, options.references, { table: 'table', columns: 'string array', tenantColumn: 'string' }, 'nothing was sent', {
    required: ['table', 'columns'],
  });
  const refuse = (message: string) => new MultitenantError(`${message}; nothing was changed`, { model: bare(table), operation });
  const check = (v: string | undefined, kind: 'onDelete' | 'onUpdate') => {
    const value = normalizeAction(v ?? 'NO ACTION');
    const allowed = kind === 'onDelete' ? ['CASCADE', 'RESTRICT', 'NO ACTION'] : ['RESTRICT', 'NO ACTION'];
    if (!allowed.includes(value)) {
      throw refuse(
        `${kind} ${v} is not allowed on a key that includes the tenant column (${allowed.join(', ')}): ${value.startsWith('SET') ? 'it would clear or change the tenant column too' : 'Citus rejects it on the distribution column'}`,
      );
    }
    return value;
  };
  const spec: ForeignKeySpec = {
    name: options.name ?? constraintName(bare(table), options.tenantColumn, ...options.columns, 'fkey'),
    child: table,
    columns: [options.tenantColumn, ...options.columns],
    parent: options.references.table,
    parentColumns: [options.references.tenantColumn ?? options.tenantColumn, ...options.references.columns],
    onDelete: check(options.onDelete, 'onDelete'),
    onUpdate: check(options.onUpdate, 'onUpdate'),
    composite: true,
    source: `addTenantForeignKey(${bare(table)})`,
    model: bare(table),
    operation,
  };
  if (spec.columns.length !== spec.parentColumns.length) {
    throw refuse(
      `${spec.columns.length} column(s) (${spec.columns.join(', ')}) cannot reference ${spec.parentColumns.length} (${spec.parentColumns.join(', ')})`,
    );
  }
  // every column named must exist before the first statement: a parent without the tenant column is the usual mistake
  for (const [t, columns] of [
    [spec.child, spec.columns],
    [spec.parent, spec.parentColumns],
  ] as const) {
    const found = await rows<{ name: string }>(
      sequelize,
      `SELECT attname::text AS name FROM pg_attribute WHERE attrelid = to_regclass(${regclass(sequelize, t)}) AND attnum > 0 AND NOT attisdropped`,
      options,
    );
    if (found.length === 0) throw refuse(`table ${bare(t)} does not exist`);
    const missing = columns.filter((c) => !found.some((f) => f.name === c));
    if (missing.length > 0) {
      throw refuse(
        `table ${bare(t)} has no column ${missing.join(', ')}${t === spec.parent && missing.includes(spec.parentColumns[0] as string) ? ': the parent must be a tenant table holding the tenant column (references.tenantColumn names it when it is called differently there)' : ''}`,
      );
    }
  }
  if (await hasCitus(sequelize, { transaction: options.transaction })) {
    // Citus adds a key between distributed tables only: checked before the parent's unique key is added
    const child = await distributionOf(sequelize, spec.child, options);
    const parent = await distributionOf(sequelize, spec.parent, options);
    for (const [t, d] of [
      [spec.child, child],
      [spec.parent, parent],
    ] as const) {
      if (d?.kind !== 'hash') {
        throw refuse(
          `table ${bare(t)} is ${d ? (d.kind === 'reference' ? 'a reference table' : 'a Citus local table') : 'not distributed'}: distribute both tables on the tenant column first (createDistributedTable, parents first)`,
        );
      }
    }
    if (child && parent && child.colocation !== parent.colocation) {
      throw refuse(
        `tables ${bare(spec.child)} and ${bare(spec.parent)} are not colocated: distribute them with colocateWith the same tenant table`,
      );
    }
  }
  return addForeignKey(sequelize, spec, options);
}
