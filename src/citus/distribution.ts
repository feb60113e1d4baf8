// How Citus holds each table: read from its catalog, compared with what the library makes (tenant
// tables hash-distributed on the tenant column, colocated with the tenant table; referenceTable models
// reference tables), and the statements that distribute a model.
import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import { distributeWithRls } from '../rls/policy';
import { fieldOf, isReference, metaOf, models, tenantTableOf } from '../schema/graph';
import { bare, regclass, rows, runCitus, type SqlOptions, type TableName, tableKey } from '../schema/sql';
import { hasThroughAutoKey } from '../schema/through';

/** How Citus holds a table: hash-distributed on a column, a reference table, a Citus local table, or not at all. */
export interface Distribution {
  kind: 'hash' | 'reference' | 'local' | 'other';
  column: string | null;
  colocation: number;
}

export async function distributionOf(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<Distribution | undefined> {
  const [row] = await rows<{ method: string; repmodel: string; col: string | null; g: number }>(
    sequelize,
    `SELECT partmethod AS method, repmodel, column_to_column_name(logicalrelid, partkey) AS col, colocationid AS g
       FROM pg_dist_partition WHERE logicalrelid = to_regclass(${regclass(sequelize, table)})`,
    options,
  );
  if (!row) return undefined;
  // a Citus local table (a local table Citus took into its metadata, e.g. for a key to a reference table) is not distributed
  const kind = row.method === 'h' ? 'hash' : row.method === 'n' ? (row.repmodel === 't' ? 'reference' : 'local') : 'other';
  return { kind, column: row.col, colocation: Number(row.g) };
}

/** True when the table is hash-distributed or a reference table (what a foreign key between distributed tables needs). */
export async function isDistributed(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean> {
  const d = await distributionOf(sequelize, table, options);
  return d?.kind === 'hash' || d?.kind === 'reference';
}

/**
 * What is wrong with how Citus holds a model's table, or undefined when it is as the library makes it:
 * a tenant model hash-distributed on its tenant column (colocated with its tenant table when that one is
 * distributed), a `referenceTable` model a reference table. With the statement that fixes it.
 */
export async function distributionProblem(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions): Promise<string | undefined> {
  const table = model.getTableName() as TableName;
  const d = await distributionOf(sequelize, table, options);
  const meta = metaOf(model);
  const name = bare(table);
  if (meta) {
    if (!d || d.kind === 'local') return `${name} is a local table on Citus: it was not distributed`;
    if (d.kind !== 'hash' || d.column !== meta.column) {
      return `${name} is ${d.kind === 'reference' ? 'a reference table' : `distributed on ${d.column ?? 'nothing'}`}, not hash-distributed on its tenant column ${meta.column}: run SELECT undistribute_table(${regclass(sequelize, table)}) and sync again${d.kind === 'hash' ? `, or SELECT alter_distributed_table(${regclass(sequelize, table)}, distribution_column => '${meta.column}')` : ''}`;
    }
    const colocate = colocationTable(sequelize, model, meta);
    const parent = colocate ? await distributionOf(sequelize, colocate, options) : undefined;
    if (colocate && parent?.kind === 'hash' && parent.colocation !== d.colocation) {
      return `${name} is not colocated with ${bare(colocate)}: run SELECT alter_distributed_table(${regclass(sequelize, table)}, colocate_with => ${regclass(sequelize, colocate)})`;
    }
    return undefined;
  }
  if (isReference(model) && d?.kind !== 'reference') {
    return `${name} (referenceTable: true) is ${d ? (d.kind === 'local' ? 'a Citus local table' : `distributed on ${d.column}`) : 'a local table'}, not a reference table${d?.kind === 'hash' ? `: run SELECT undistribute_table(${regclass(sequelize, table)}) and sync again` : ''}`;
  }
  return undefined;
}

/**
 * The table a tenant model is colocated with: its tenant table when the distribution columns have the
 * same type (Citus colocates nothing else; a tenant column of another type — a text `org` beside bigint
 * stores — is another tenant dimension and gets a colocation group of its own).
 */
export function colocationTable(sequelize: Sequelize, model: AnyModelStatic, meta: TenantMeta): TableName | undefined {
  const found = tenantTableOf(sequelize, model, meta);
  if (!found || tenantMeta(found.model)?.typeKey !== meta.typeKey) return undefined;
  return found.model.getTableName() as TableName;
}

/** Another tenant model of the application, already hash-distributed on a tenant column of the same type. */
async function distributedSibling(
  sequelize: Sequelize,
  model: AnyModelStatic,
  meta: TenantMeta,
  options: SqlOptions,
): Promise<TableName | undefined> {
  for (const other of models(sequelize)) {
    const m = other === model ? undefined : tenantMeta(other);
    if (!m || m.typeKey !== meta.typeKey) continue;
    const table = other.getTableName() as TableName;
    const d = await distributionOf(sequelize, table, options);
    if (d?.kind === 'hash' && d.column === m.column) return table;
  }
  return undefined;
}

/**
 * The SELECT that distributes a tenant model, per the Citus docs: colocated with `colocateWith`, or —
 * without it — in a colocation group of its own (`colocate_with => 'none'`), never Citus' default group,
 * which every table of the database distributed without a group shares: `isolate_tenant_to_new_shard`
 * splits every table of a group, and `citus_stat_tenants` counts by group.
 */
export function distributionSql(sequelize: Sequelize, table: TableName, column: string, colocateWith?: TableName): string {
  const colocate = colocateWith ? regclass(sequelize, colocateWith) : `'none'`;
  return `SELECT create_distributed_table(${regclass(sequelize, table)}, '${column.replace(/'/g, "''")}', colocate_with => ${colocate})`;
}
export const referenceSql = (sequelize: Sequelize, table: TableName): string =>
  `SELECT create_reference_table(${regclass(sequelize, table)})`;

/** After CREATE TABLE on Citus: distribute a tenant model, or make a `referenceTable: true` model a reference table. */
export async function distributeModel(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions = {}): Promise<string | undefined> {
  const table = model.getTableName() as TableName;
  const current = await distributionOf(sequelize, table, options);
  if (current && current.kind !== 'local') {
    // already distributed: as the library makes it, or a MultitenantError with the statement that fixes it
    const problem = await distributionProblem(sequelize, model, options);
    if (problem) throw new MultitenantError(problem, { model: model.name, operation: 'sync' });
    return undefined;
  }
  const meta = tenantMeta(model);
  if (meta) {
    const pk = (model as unknown as { primaryKeyAttributes: string[] }).primaryKeyAttributes.map((a) => fieldOf(model, a));
    if (!meta.isTenantTable && !pk.includes(meta.column) && !hasThroughAutoKey(model)) {
      throw new MultitenantError(
        `cannot distribute ${bare(table)} on Citus: its primary key (${pk.join(', ')}) does not include the tenant column ${meta.column}. Make it (${[meta.column, ...pk].join(', ')})`,
        { model: model.name, operation: 'sync' },
      );
    }
    const colocate = colocationTable(sequelize, model, meta);
    const ready = colocate && (await isDistributed(sequelize, colocate, options));
    // colocated with the tenant table; an application without one (only tenant columns) keeps its tables in
    // one group all the same: with the first of its tenant tables already distributed on a column of the
    // same type, or — the first — in a group of its own
    const anchor = ready ? colocate : colocate ? undefined : await distributedSibling(sequelize, model, meta, options);
    const distribute = distributionSql(sequelize, table, meta.column, anchor);
    await distributeWithRls(sequelize, table, meta.column, options, () => runCitus(sequelize, distribute, model.name, options));
    return distribute;
  }
  if (!isReference(model)) return undefined;
  const sql = referenceSql(sequelize, table);
  await runCitus(sequelize, sql, model.name, options);
  return sql;
}

/**
 * The hash-distributed tables of a colocation group that no tenant model of the application names (shown
 * `schema.table`): another application's tables that joined the group, which `isolate_tenant_to_new_shard`
 * would split too and `citus_stat_tenants` counts with it.
 */
export async function tablesOutsideApplication(sequelize: Sequelize, group: number, options: SqlOptions = {}): Promise<string[]> {
  const ours = new Set<string>();
  for (const model of models(sequelize)) {
    if (tenantMeta(model)) ours.add(tableKey(model.getTableName() as TableName));
  }
  const found = await rows<{ schema: string; name: string; current: string }>(
    sequelize,
    `SELECT n.nspname AS schema, c.relname AS name, current_schema() AS current
       FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.colocationid = ${Number(group)} ORDER BY 1, 2`,
    options,
  );
  // a model without a schema names a table of the connection's current schema
  const isOurs = (r: { schema: string; name: string; current: string }) =>
    ours.has(tableKey({ tableName: r.name, schema: r.schema })) || (r.schema === r.current && ours.has(tableKey(r.name)));
  return found.filter((r) => !isOurs(r)).map((r) => `${r.schema}.${r.name}`);
}
