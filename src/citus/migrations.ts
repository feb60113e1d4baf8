import type { QueryInterface, Sequelize, Transaction } from 'sequelize';
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
 * distributed tables). Resolves to false when a constraint of that name already exists.
 * @example
 * await addTenantForeignKey(queryInterface, 'purchases', {
 *   tenantColumn: 'store_id', columns: ['product_id'], references: { table: 'products', columns: ['id'] },
 *   onDelete: 'CASCADE',
 * });
 */
export async function addTenantForeignKey(target: Target, table: TableName, options: TenantForeignKeyOptions): Promise<boolean> {
  const sequelize = sequelizeOf(target);
  const check = (v: string | undefined, kind: string) => {
    const value = (v ?? 'NO ACTION').toUpperCase();
    if (!['CASCADE', 'RESTRICT', 'NO ACTION'].includes(value)) {
      throw new TypeError(
        `addTenantForeignKey: ${kind} ${v} is not allowed on a key that includes the tenant column (CASCADE, RESTRICT or NO ACTION)`,
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
  };
  return addForeignKey(sequelize, spec, options);
}
