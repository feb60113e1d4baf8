import type { QueryInterface, Sequelize, Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import { type NoticeHandler, notify } from '../notice';
import { addForeignKey, distributionSql, type ForeignKeySpec, referenceSql } from './schema';
import { bare, constraintName, hasCitus, regclass, rows, run, type TableName } from './sql';

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
  notify(sequelize, `${what}: no citus extension in this database, nothing to do (plain PostgreSQL)`, options.notice);
  return undefined;
}

async function distributed(sequelize: Sequelize, table: TableName, options: MigrationOptions): Promise<boolean> {
  return (
    (await rows(sequelize, `SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(${regclass(table)})`, options)).length > 0
  );
}

/**
 * Distributes `table` on its tenant column, colocated with the tenant table (Citus
 * `create_distributed_table`). Run it right after creating the table, parents first. A no-op with a
 * notice on plain PostgreSQL and for a table already distributed. Resolves to whether it distributed.
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
  const sequelize = await citusOr(target, `createDistributedTable(${bare(table)})`, options);
  if (!sequelize || (await distributed(sequelize, table, options))) return false;
  await run(sequelize, distributionSql(table, tenantColumn, options.colocateWith), options);
  return true;
}

/**
 * Makes `table` a Citus reference table (`create_reference_table`): a global table copied to every node,
 * joinable from every tenant table. A no-op with a notice on plain PostgreSQL or when already done.
 * @example
 * await createReferenceTable(queryInterface, 'countries');
 */
export async function createReferenceTable(target: Target, table: TableName, options: MigrationOptions = {}): Promise<boolean> {
  const sequelize = await citusOr(target, `createReferenceTable(${bare(table)})`, options);
  if (!sequelize || (await distributed(sequelize, table, options))) return false;
  await run(sequelize, referenceSql(table), options);
  return true;
}

/**
 * Turns a distributed or reference table back into a local table (Citus `undistribute_table`), e.g. in a
 * migration's `down`. A no-op with a notice on plain PostgreSQL or for a table that is not distributed.
 * @example
 * await undistributeTable(queryInterface, 'products');
 */
export async function undistributeTable(target: Target, table: TableName, options: MigrationOptions = {}): Promise<boolean> {
  const sequelize = await citusOr(target, `undistributeTable(${bare(table)})`, options);
  if (!sequelize || !(await distributed(sequelize, table, options))) return false;
  await run(sequelize, `SELECT undistribute_table(${regclass(table)})`, options);
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
  const refuse = (message: string) => new MultitenantError(`${message}; nothing was changed`, { model: bare(table), operation });
  const check = (v: string | undefined, kind: 'onDelete' | 'onUpdate') => {
    const value = (v ?? 'NO ACTION').toUpperCase();
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
      `SELECT attname::text AS name FROM pg_attribute WHERE attrelid = to_regclass(${regclass(t)}) AND attnum > 0 AND NOT attisdropped`,
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
  return addForeignKey(sequelize, spec, options);
}
