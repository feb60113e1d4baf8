import { QueryTypes, type Sequelize } from 'sequelize';
import { distributionOf, tablesOutsideApplication } from '../citus/distribution';
import { runSchemaWork } from '../context';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import { POLICY_NAME, TRUNCATE_TRIGGER } from '../rls/names';
import { createTruncateTriggerSql, dropTruncateTriggerSql, truncateTriggerInPlace } from '../rls/policy';
import { isReference, tenantTableOf as schemaTenantTableOf } from '../schema/graph';
import { constraintName, hasCitus, ident, qualified, type TableName, tableKey } from '../schema/sql';

// What blocks an existing application from scaling out: each tenant model's table, read from the
// database's catalogs (PostgreSQL and Citus alike), against what Citus and tenant isolation need.

/** How much a problem matters: `blocks` — Citus refuses to distribute, or tenants can collide; `warn` — worth fixing. */
export type Severity = 'blocks' | 'warn';

/** When a statement of a fix runs in a migration: foreign keys dropped before the keys they depend on change, re-added after, distribution last. */
export type Step = 'column' | 'drop-foreign-key' | 'key' | 'unique' | 'foreign-key' | 'distribute' | 'reference-foreign-key';
export const STEPS: readonly Step[] = ['column', 'drop-foreign-key', 'key', 'unique', 'foreign-key', 'distribute', 'reference-foreign-key'];

/** One problem of one table, with the statements that fix it. */
export interface Problem {
  table: string;
  severity: Severity;
  /** What is wrong, in a sentence. */
  message: string;
  /** SQL that fixes it, each with its step; empty when the fix is the application's (backfilling a column). */
  fix: Array<{ step: Step; sql: string }>;
}

/** What the doctor found for one table. */
export interface TableReport {
  table: string;
  model: string;
  kind: 'tenant table' | 'tenant-owned' | 'global';
  tenantColumn?: string;
  exists: boolean;
  citus?: 'hash' | 'reference' | 'local' | 'none';
  colocatedWithTenantTable?: boolean;
  rls?: 'on' | 'off';
  /** On Citus, the column a table is distributed on when it is not the tenant column. */
  distributedOn?: string;
  /** The tenant tables this table's foreign keys point to (distribution order). */
  parents: string[];
  problems: Problem[];
}

interface ColumnRow {
  name: string;
  type: string;
}
interface IndexRow {
  name: string;
  primary: boolean;
  columns: string[];
  constraint: boolean;
  /** An expression among its keys, or a WHERE: rebuilt by hand, never by a generated statement. */
  manual: boolean;
  definition: string;
}
interface ForeignKeyRow {
  name: string;
  columns: string[];
  parent: string;
  parent_schema: string;
  parent_columns: string[];
  on_delete: string;
  on_update: string;
}

const ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

/** The foreign keys of a table, with their referential actions. */
function foreignKeysSql(regclass: string): string {
  return `SELECT c.conname AS name,
              array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns,
              pc.relname AS parent, pn.nspname AS parent_schema,
              array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS parent_columns,
              c.confdeltype AS on_delete, c.confupdtype AS on_update
         FROM pg_constraint c JOIN pg_class pc ON pc.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE c.contype = 'f' AND c.conrelid = to_regclass(${regclass}) ORDER BY 1`;
}

const models = (sequelize: Sequelize): AnyModelStatic[] =>
  (sequelize as unknown as { modelManager: { models: AnyModelStatic[] } }).modelManager.models;

async function select<T>(sequelize: Sequelize, sql: string, bind: unknown[] = []): Promise<T[]> {
  return (await runSchemaWork(() => sequelize.query(sql, { type: QueryTypes.SELECT, bind, logging: false }))) as T[];
}

const literalOf = (text: string) => `'${text.replace(/'/g, "''")}'`;
const regclassOf = (sequelize: Sequelize, table: TableName) => literalOf(qualified(sequelize, table));

/**
 * The tenant table: the model keyed by the tenant column alone — among several (a 1:1 table keyed by
 * the tenant too), the one the other tenant models' tenant columns point to, as sync() decides.
 */
function tenantTableOf(sequelize: Sequelize, all: AnyModelStatic[]): AnyModelStatic | undefined {
  const tables = all.filter((m) => tenantMeta(m)?.isTenantTable);
  if (tables.length <= 1) return tables[0];
  for (const model of all) {
    const meta = tenantMeta(model);
    if (!meta || meta.isTenantTable) continue;
    const found = schemaTenantTableOf(sequelize, model, meta);
    if (found) return found.model;
  }
  return tables.find(
    (m) =>
      (m as unknown as { rawAttributes: Record<string, { autoIncrement?: boolean }> }).rawAttributes[tenantMeta(m)?.attribute ?? '']
        ?.autoIncrement,
  );
}

/**
 * Reads every model of the instance against the database and reports, per table: the tenant column
 * present and typed like the tenant table's key; primary key and unique keys including it; foreign keys
 * between tenant tables including it in the same position; on Citus, distributed on it and colocated
 * with the tenant table (global models marked `referenceTable`: reference tables); row-level security,
 * and on a tenant table that has any of it, every part (ENABLE, FORCE, the policy, the TRUNCATE trigger).
 */
export async function inspect(sequelize: Sequelize): Promise<TableReport[]> {
  const all = models(sequelize);
  const citus = await hasCitus(sequelize, { refresh: true });
  const tenantTable = tenantTableOf(sequelize, all);
  const tenantTableMeta = tenantTable ? tenantMeta(tenantTable) : undefined;
  const tenantTableName = tenantTable ? (tenantTable.getTableName() as TableName) : undefined;
  const metaByTable = new Map<string, TenantMeta>();
  const referenceModels = new Map<string, AnyModelStatic>();
  for (const model of all) {
    const meta = tenantMeta(model);
    if (meta) metaByTable.set(tableKey(model.getTableName() as TableName), meta);
    else if (isReference(model)) referenceModels.set(tableKey(model.getTableName() as TableName), model);
  }
  // the tenant table's distribution, which every tenant table's colocation is compared with
  const home = citus && tenantTableName ? await distributionOf(sequelize, tenantTableName, {}) : undefined;
  // a model without a schema lives in the connection's current schema
  const [{ schema: current } = { schema: 'public' }] = await select<{ schema: string }>(sequelize, 'SELECT current_schema() AS schema');
  // tables outside the application in the tenant table's colocation group: isolate_tenant_to_new_shard
  // would split them too, and citus_stat_tenants would count their tenant ids as this application's
  const strangers = home?.kind === 'hash' && tenantTableName ? await tablesOutsideApplication(sequelize, home.colocation) : [];
  const reports: TableReport[] = [];
  for (const model of all) {
    const meta = tenantMeta(model);
    const options = (model as unknown as { options: { referenceTable?: boolean } }).options;
    const table = model.getTableName() as TableName;
    const name = typeof table === 'string' ? table : table.schema ? `${table.schema}.${table.tableName}` : table.tableName;
    const report: TableReport = {
      table: name,
      model: model.name,
      kind: meta ? (meta.isTenantTable ? 'tenant table' : 'tenant-owned') : 'global',
      ...(meta ? { tenantColumn: meta.column } : {}),
      exists: false,
      parents: [],
      problems: [],
    };
    reports.push(report);
    const [exists] = await select<{ oid: number | null }>(sequelize, `SELECT to_regclass(${regclassOf(sequelize, table)})::oid AS oid`);
    if (!exists?.oid) {
      report.problems.push({ table: name, severity: 'warn', message: 'the table does not exist yet (sync or migrate first)', fix: [] });
      continue;
    }
    report.exists = true;
    const t = qualified(sequelize, table);
    const q = (identifier: string) => ident(sequelize, identifier);
    const columns = await select<ColumnRow>(
      sequelize,
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = to_regclass(${regclassOf(sequelize, table)}) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    );
    if (citus) {
      const d = await distributionOf(sequelize, table, {});
      report.citus = !d ? 'none' : d.kind === 'hash' ? 'hash' : d.kind === 'reference' ? 'reference' : 'local';
      if (meta) {
        report.colocatedWithTenantTable =
          d?.kind === 'hash' && d.column === meta.column && (meta.isTenantTable || (!!home && d.colocation === home.colocation));
        if (d?.kind === 'hash' && d.column !== meta.column) report.distributedOn = d.column ?? undefined;
      }
    }
    const [rls] = await select<{
      enabled: boolean;
      forced: boolean;
      policy: boolean;
      trigger: boolean;
      hasTrigger: boolean;
      schema: string;
    }>(
      sequelize,
      `SELECT c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced, (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace) AS schema,
              EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '${TRUNCATE_TRIGGER}') AS "hasTrigger",
              EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = '${POLICY_NAME}') AS policy,
              coalesce(${truncateTriggerInPlace('c')}, false) AS trigger
         FROM pg_class c WHERE c.oid = to_regclass(${regclassOf(sequelize, table)})`,
    );
    report.rls = rls?.enabled && rls.forced ? 'on' : 'off';
    if (meta && rls && (rls.enabled || rls.forced || rls.policy || rls.trigger)) {
      // under row-level security (rls: true, or a migration's enableRowLevelSecurity), each part holds a
      // door the others do not: FORCE the owner, the policy the rows, the trigger TRUNCATE (not subject to policies)
      const lacks = [
        !rls.enabled && 'ENABLE ROW LEVEL SECURITY',
        !rls.forced && 'FORCE ROW LEVEL SECURITY',
        !rls.policy && `the policy ${POLICY_NAME}`,
        !rls.trigger &&
          `the TRUNCATE trigger ${TRUNCATE_TRIGGER} (row-level security does not apply to TRUNCATE: without it one TRUNCATE under a tenant empties the table for every tenant)`,
      ].filter((x): x is string => !!x);
      if (lacks.length > 0) {
        report.problems.push({
          table: name,
          severity: 'warn',
          message: `row-level security is incomplete, missing: ${lacks.join('; ')} — run enableRowLevelSecurity(queryInterface, '${name}', { column: '${meta.column}' }) in a migration, or sequelize.sync() with rls: true`,
          fix: [],
        });
      }
    }
    if (!meta) {
      for (const fk of await select<ForeignKeyRow>(sequelize, foreignKeysSql(regclassOf(sequelize, table)))) {
        const parentTable: TableName = fk.parent_schema === 'public' ? fk.parent : { tableName: fk.parent, schema: fk.parent_schema };
        const parentMeta =
          metaByTable.get(tableKey(parentTable)) ?? (fk.parent_schema === current ? metaByTable.get(tableKey(fk.parent)) : undefined);
        if (!parentMeta) continue;
        report.problems.push({
          table: name,
          severity: 'blocks',
          message: `foreign key ${fk.name} of this global table → the tenant table ${fk.parent}: Citus refuses keys from local or reference tables to distributed ones, and it holds the keys of ${fk.parent} in place — make this a tenant table (its tenant column and tenantKey), or drop the key`,
          fix: [],
        });
      }
      if (citus && options.referenceTable && report.citus !== 'reference') {
        report.problems.push({
          table: name,
          severity: 'blocks',
          message: 'marked referenceTable but not a reference table',
          fix: [{ step: 'distribute', sql: `SELECT create_reference_table(${regclassOf(sequelize, table)})` }],
        });
      }
      continue;
    }
    const column = columns.find((c) => c.name === meta.column);
    if (!column) {
      report.problems.push({
        table: name,
        severity: 'blocks',
        message: `no tenant column ${meta.column}: add it (nullable), backfill it with the application in writeOnly mode, then make it NOT NULL`,
        fix: [],
      });
      continue;
    }
    const keyType = tenantTableMeta && tenantTableName ? await columnType(sequelize, tenantTableName, tenantTableMeta.column) : undefined;
    if (keyType && !meta.isTenantTable && keyType !== column.type) {
      report.problems.push({
        table: name,
        severity: 'blocks',
        message: `the tenant column ${meta.column} is ${column.type}, the tenant table's key is ${keyType}: Citus colocates only columns of one type`,
        fix: [
          { step: 'column', sql: `ALTER TABLE ${t} ALTER COLUMN ${q(meta.column)} TYPE ${keyType} USING ${q(meta.column)}::${keyType}` },
        ],
      });
    }
    const indexes = await select<IndexRow>(
      sequelize,
      `SELECT c.relname AS name, i.indisprimary AS primary,
              array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns,
              EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid AND conrelid = i.indrelid) AS "constraint",
              (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR 0 = ANY (i.indkey::int2[])) AS manual,
              pg_get_indexdef(i.indexrelid) AS definition
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = to_regclass(${regclassOf(sequelize, table)}) AND i.indisunique ORDER BY 1`,
    );
    for (const index of indexes) {
      if (index.columns.includes(meta.column)) continue;
      const withTenant = [meta.column, ...index.columns];
      if (index.manual || (meta.isTenantTable && !index.primary)) {
        report.problems.push({
          table: name,
          severity: 'blocks',
          message: meta.isTenantTable
            ? `unique ${index.constraint ? 'key' : 'index'} ${index.name} of the tenant table does not include its key ${meta.column}: Citus refuses it, and with ${meta.column} added it is unique per tenant only — drop it, or keep that uniqueness elsewhere (a reference table) (${index.definition})`
            : `unique index ${index.name} (an expression or a WHERE) does not include the tenant column ${meta.column}: Citus refuses it — rebuild it by hand with ${meta.column} as its first key: ${index.definition}`,
          fix: [],
        });
        continue;
      }
      if (index.primary) {
        report.problems.push({
          table: name,
          severity: 'blocks',
          message: `primary key (${index.columns.join(', ')}) does not include the tenant column ${meta.column}: Citus refuses it, and tenants cannot share ids`,
          fix: [
            { step: 'key', sql: `ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${q(index.name)}` },
            { step: 'key', sql: `ALTER TABLE ${t} ADD PRIMARY KEY (${withTenant.map(q).join(', ')})` },
          ],
        });
      } else {
        const replacement = constraintName(tableNameOf(table), ...withTenant, 'key');
        report.problems.push({
          table: name,
          severity: 'blocks',
          message: `unique ${index.constraint ? 'key' : 'index'} ${index.name} (${index.columns.join(', ')}) does not include the tenant column ${meta.column}: Citus refuses it, and one tenant's values block another's`,
          fix: [
            {
              step: 'unique',
              sql: index.constraint
                ? `ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${q(index.name)}`
                : `DROP INDEX IF EXISTS ${indexName(sequelize, table, index.name)}`,
            },
            { step: 'unique', sql: `ALTER TABLE ${t} ADD CONSTRAINT ${q(replacement)} UNIQUE (${withTenant.map(q).join(', ')})` },
          ],
        });
      }
    }
    const nulls = await select<{ n: number }>(sequelize, `SELECT count(*)::int AS n FROM ${t} WHERE ${q(meta.column)} IS NULL`);
    if ((nulls[0]?.n ?? 0) > 0) {
      report.problems.push({
        table: name,
        severity: 'blocks',
        message: `${nulls[0]?.n} row(s) have no tenant (${meta.column} IS NULL): backfill them (the application in writeOnly mode stamps new rows), then make ${meta.column} NOT NULL — no key can include it before`,
        fix: [],
      });
    }
    const foreignKeys = await select<ForeignKeyRow>(sequelize, foreignKeysSql(regclassOf(sequelize, table)));
    for (const fk of foreignKeys) {
      // a parent in the current schema is named as the application's models name it (unqualified)
      const inCurrent = fk.parent_schema === current || fk.parent_schema === 'public';
      const parentTable: TableName = inCurrent ? fk.parent : { tableName: fk.parent, schema: fk.parent_schema };
      // a model without a schema lives in the current schema: look the parent up both ways
      const parentMeta =
        metaByTable.get(tableKey(parentTable)) ?? (fk.parent_schema === current ? metaByTable.get(tableKey(fk.parent)) : undefined);
      if (parentMeta)
        report.parents.push(fk.parent_schema === current || fk.parent_schema === 'public' ? fk.parent : `${fk.parent_schema}.${fk.parent}`);
      if (!parentMeta) {
        // to a global table: on Citus one marked referenceTable becomes a reference table; a key to it from a
        // table about to be distributed must wait until both are (Citus refuses it in between)
        const parentModel =
          referenceModels.get(tableKey(parentTable)) ??
          (inCurrent ? referenceModels.get(tableKey({ tableName: fk.parent, schema: fk.parent_schema })) : undefined);
        if (
          citus &&
          parentModel &&
          !report.colocatedWithTenantTable &&
          (await distributionOf(sequelize, parentModel.getTableName() as TableName, {}))?.kind !== 'reference'
        ) {
          const [def] = await select<{ def: string }>(
            sequelize,
            `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = to_regclass(${regclassOf(sequelize, table)}) AND conname = $1`,
            [fk.name],
          );
          report.problems.push({
            table: name,
            severity: 'blocks',
            message: `foreign key ${fk.name} → ${fk.parent}, which becomes a reference table: Citus refuses it while one end is local — dropped before distribution, added again after`,
            fix: [
              { step: 'drop-foreign-key', sql: `ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${q(fk.name)}` },
              { step: 'reference-foreign-key', sql: `ALTER TABLE ${t} ADD CONSTRAINT ${q(fk.name)} ${def?.def}` },
            ],
          });
        }
        continue;
      }
      if (parentMeta.isTenantTable) {
        // store_id → stores.id is right; another column → the tenant table is not colocated by it
        if (fk.columns.length === 1 && fk.columns[0] === meta.column) continue;
        if (fk.columns.includes(meta.column) && fk.columns.indexOf(meta.column) === fk.parent_columns.indexOf(parentMeta.column)) continue;
        report.problems.push({
          table: name,
          severity: citus ? 'blocks' : 'warn',
          message: `foreign key ${fk.name} (${fk.columns.join(', ')}) → the tenant table ${fk.parent} (${fk.parent_columns.join(', ')}) is not on the tenant column: Citus refuses it between distributed tables — drop it, or check it in the application`,
          fix: [],
        });
        continue;
      }
      const at = fk.columns.indexOf(meta.column);
      if (at >= 0 && fk.parent_columns[at] === parentMeta.column) continue;
      const others = fk.columns.filter((c) => c !== meta.column);
      const columnsWith = [meta.column, ...others];
      const parentWith = [parentMeta.column, ...fk.parent_columns.filter((c) => c !== parentMeta.column)];
      const replacement = constraintName(tableNameOf(table), ...columnsWith, 'fkey');
      const p = qualified(sequelize, parentTable);
      // rows that point at another tenant's row would break the new key: counted first
      const join = fk.columns.map((c, i) => `x.${q(fk.parent_columns[i] as string)} = c.${q(c)}`).join(' AND ');
      const [crossing] = await select<{ n: number }>(
        sequelize,
        `SELECT count(*)::int AS n FROM ${t} c JOIN ${p} x ON ${join} WHERE x.${q(parentMeta.column)} IS DISTINCT FROM c.${q(meta.column)}`,
      );
      if ((crossing?.n ?? 0) > 0) {
        report.problems.push({
          table: name,
          severity: 'blocks',
          message: `${crossing?.n} row(s) point through ${fk.name} at another tenant's row in ${fk.parent}: fix those rows first — the tenant-aware key would refuse them`,
          fix: [],
        });
      }
      // the key's actions are kept; SET NULL / SET DEFAULT clear only the key's own columns, never the tenant column
      const onDelete = ACTIONS[fk.on_delete] ?? 'NO ACTION';
      const deleteAction = onDelete.startsWith('SET ') ? `${onDelete} (${others.map(q).join(', ')})` : onDelete;
      const onUpdate = ACTIONS[fk.on_update] ?? 'NO ACTION';
      const updateAction = onUpdate.startsWith('SET ') ? 'NO ACTION' : onUpdate;
      report.problems.push({
        table: name,
        severity: 'blocks',
        message: `foreign key ${fk.name} (${fk.columns.join(', ')}) → ${fk.parent} (${fk.parent_columns.join(', ')}) does not carry the tenant column in the same position: it lets a row point at another tenant's row, and Citus refuses it between distributed tables`,
        fix: [
          { step: 'drop-foreign-key', sql: `ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${q(fk.name)}` },
          {
            step: 'foreign-key',
            sql: `ALTER TABLE ${t} ADD CONSTRAINT ${q(replacement)} FOREIGN KEY (${columnsWith.map(q).join(', ')}) REFERENCES ${p} (${parentWith.map(q).join(', ')}) ON DELETE ${deleteAction} ON UPDATE ${updateAction}`,
          },
        ],
      });
    }
    if (meta.isTenantTable && strangers.length > 0 && report.colocatedWithTenantTable) {
      const own = all.filter((m) => {
        const other = tenantMeta(m);
        return other && !other.isTenantTable && other.typeKey === meta.typeKey;
      });
      report.problems.push({
        table: name,
        severity: 'warn',
        message: `its colocation group also holds ${strangers.length} table(s) outside this application (${strangers.slice(0, 5).join(', ')}${strangers.length > 5 ? ', ...' : ''}): isolateTenant would split their shards too, and tenantStats would count their tenant ids as this application's. Give the tenant table a group of its own and move the application's tables into it`,
        fix: [
          {
            step: 'distribute',
            sql: `SELECT update_distributed_table_colocation(${regclassOf(sequelize, table)}, colocate_with => 'none')`,
          },
          ...own.map((m) => ({
            step: 'distribute' as const,
            sql: `SELECT update_distributed_table_colocation(${regclassOf(sequelize, m.getTableName() as TableName)}, colocate_with => ${regclassOf(sequelize, table)})`,
          })),
        ],
      });
    }
    if (citus && !report.colocatedWithTenantTable) {
      // the tenant table in a colocation group of its own (never Citus' default one, which other tables of
      // the database may share), every tenant table with it
      const colocate = `, colocate_with => ${!meta.isTenantTable && tenantTableName ? regclassOf(sequelize, tenantTableName) : "'none'"}`;
      // Citus refuses to distribute (or redistribute) a table with triggers: the library's TRUNCATE trigger
      // is dropped before and made again after, with citus.enable_unsafe_triggers for that statement
      const guard = rls?.hasTrigger
        ? {
            before: [{ step: 'distribute' as const, sql: dropTruncateTriggerSql(sequelize, table, report.citus !== 'none') }],
            after: [{ step: 'distribute' as const, sql: createTruncateTriggerSql(sequelize, table, rls.schema, true) }],
          }
        : { before: [], after: [] };
      report.problems.push({
        table: name,
        severity: 'blocks',
        message:
          report.citus === 'hash'
            ? report.distributedOn
              ? `distributed on ${report.distributedOn}, not on its tenant column ${meta.column}`
              : `distributed, but not colocated with the tenant table${tenantTableName ? ` ${tableNameOf(tenantTableName)}` : ''}`
            : `not distributed on its tenant column ${meta.column}`,
        fix: [
          ...guard.before,
          {
            step: 'distribute',
            sql:
              report.citus === 'hash'
                ? `SELECT alter_distributed_table(${regclassOf(sequelize, table)}, distribution_column => ${literalOf(meta.column)}${colocate})`
                : `SELECT create_distributed_table(${regclassOf(sequelize, table)}, ${literalOf(meta.column)}${colocate})`,
          },
          ...guard.after,
        ],
      });
    }
  }
  return reports;
}

async function columnType(sequelize: Sequelize, table: TableName, column: string): Promise<string | undefined> {
  const [r] = await select<{ type: string }>(
    sequelize,
    `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass(${regclassOf(sequelize, table)}) AND attname = $1`,
    [column],
  );
  return r?.type;
}

/** An index of the table's schema, qualified for DROP INDEX. */
function indexName(sequelize: Sequelize, table: TableName, name: string): string {
  const q = (identifier: string) => ident(sequelize, identifier);
  return typeof table !== 'string' && table.schema ? `${q(table.schema)}.${q(name)}` : q(name);
}

const tableNameOf = (table: TableName) => (typeof table === 'string' ? table : table.tableName);
