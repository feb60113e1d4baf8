import { QueryTypes, type Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, tenantMeta } from '../models';
import { checkOptions, type OptionSpec } from '../options';
import { bare, hasCitus, regclass, rows, type TableName, tableKey } from '../schema/sql';
import { assertFits, normalizeTenant, type TenantId, type TenantInput, tenantIdOf } from '../tenant';
import { distributionOf, tablesOutsideApplication } from './distribution';

// Growing on Citus: which tenants carry the load (citus_stat_tenants), and giving a big tenant shards of
// its own (isolate_tenant_to_new_shard) that can then be moved to a node of its own.

/** The measure `tenantStats` ranks tenants by. */
export type TenantStatsMeasure = 'queries' | 'reads' | 'cpu';

/** Options of `tenantStats`. */
export interface TenantStatsOptions {
  /** How many tenants, the busiest first. @default 10 */
  top?: number;
  /** Rank by router queries, reads, or CPU seconds. @default 'queries' */
  by?: TenantStatsMeasure;
  /** Citus counts in periods (`citus.stat_tenants_period`, 60 s by default): the running one or the last complete one. @default 'current' */
  period?: 'current' | 'last';
}

/** One tenant's load in a period, as Citus attributes it. */
export interface TenantStat {
  /** The tenant id, typed as the library reads the tenant column (INTEGER: number; BIGINT, UUID, text: string). */
  tenant: TenantId;
  /** The model of the tenant table of this tenant's colocation group, when the application defines one. */
  model?: string;
  /** Citus' colocation group of the tenant's tables. */
  colocationId: number;
  /** Router queries attributed to the tenant in the period. */
  queries: number;
  /** Of them, reads. */
  reads: number;
  /** CPU seconds the tenant's queries used on the node that holds it. */
  cpuSeconds: number;
}

interface StatRow {
  colocation_id: number;
  tenant_attribute: string;
  queries: number;
  reads: number;
  cpu: number;
}

interface ModelInternals {
  sequelize?: Sequelize;
  modelManager?: { models: AnyModelStatic[] };
}

const models = (sequelize: Sequelize): AnyModelStatic[] => (sequelize as unknown as ModelInternals).modelManager?.models ?? [];

async function requireCitus(sequelize: Sequelize, operation: string): Promise<void> {
  if (sequelize.getDialect() === 'postgres' && (await hasCitus(sequelize, { refresh: true }))) return;
  throw new MultitenantError(
    `${operation} needs Citus (the citus extension in this database); this is plain PostgreSQL, where every tenant shares one server`,
    { operation },
  );
}

/** The tenant table model of each colocation group the application's tenant tables are in. */
async function tenantTablesByColocation(sequelize: Sequelize): Promise<Map<number, AnyModelStatic>> {
  const byTable = new Map<string, AnyModelStatic>();
  for (const model of models(sequelize)) {
    const meta = tenantMeta(model);
    if (meta?.isTenantTable) byTable.set(tableKey(model.getTableName() as TableName), model);
  }
  const found = await rows<{ colocationid: number; schema: string; name: string; current: string }>(
    sequelize,
    `SELECT p.colocationid, n.nspname AS schema, c.relname AS name, current_schema() AS current
       FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.partmethod = 'h'`,
  );
  const out = new Map<number, AnyModelStatic>();
  for (const { colocationid, schema, name, current } of found) {
    // a model without a schema names a table of the connection's current schema
    const model = byTable.get(tableKey({ tableName: name, schema })) ?? (schema === current ? byTable.get(tableKey(name)) : undefined);
    if (model && !out.has(Number(colocationid))) out.set(Number(colocationid), model);
  }
  return out;
}

/** A tenant id as the library reads the tenant column: numbers for INTEGER-like columns, strings otherwise (BIGINT too, as pg returns it). */
function typedId(text: string, model: AnyModelStatic | undefined): TenantId {
  const typeKey = model ? tenantMeta(model)?.typeKey : undefined;
  if ((typeKey === 'INTEGER' || typeKey === 'SMALLINT' || typeKey === 'TINYINT' || typeKey === 'MEDIUMINT') && /^-?\d+$/.test(text)) {
    return Number(text);
  }
  return text;
}

const TENANT_STATS_OPTIONS: OptionSpec = {
  top: 'positive integer',
  by: { oneOf: ['queries', 'reads', 'cpu'] },
  period: { oneOf: ['current', 'last'] },
};

/**
 * The busiest tenants, from Citus' `citus_stat_tenants` (router queries are attributed to their
 * distribution value; a query that reaches several shards is counted for none). Needs Citus and
 * `citus.stat_tenants_track = 'all'` on the coordinator and the workers: with tracking off it throws a
 * MultitenantError saying how to turn it on. Counts of one tenant on several nodes (after a move) are
 * added up.
 * @example
 * const [busiest] = await tenantStats(sequelize, { top: 5, by: 'cpu' });
 * console.log(busiest.tenant, busiest.queries, busiest.cpuSeconds);
 */
export async function tenantStats(sequelize: Sequelize, options: TenantStatsOptions = {}): Promise<TenantStat[]> {
  const operation = 'tenantStats';
  checkOptions(operation, options, TENANT_STATS_OPTIONS, 'nothing was sent');
  const top = options.top ?? 10;
  const by = options.by ?? 'queries';
  const period = options.period ?? 'current';
  await requireCitus(sequelize, operation);
  const [tracking] = await rows<{ track: string }>(sequelize, `SELECT current_setting('citus.stat_tenants_track', true) AS track`);
  if (tracking?.track !== 'all') {
    throw new MultitenantError(
      `Citus does not track tenants (citus.stat_tenants_track = '${tracking?.track ?? 'none'}'). Turn it on, on the coordinator and every worker: ` +
        `ALTER SYSTEM SET citus.stat_tenants_track = 'all'; SELECT pg_reload_conf(); and ` +
        `SELECT run_command_on_workers($$ALTER SYSTEM SET citus.stat_tenants_track = 'all'$$); SELECT run_command_on_workers($$SELECT pg_reload_conf()$$);`,
      { operation },
    );
  }
  const suffix = period === 'current' ? 'in_this_period' : 'in_last_period';
  const measure = by === 'queries' ? 'queries' : by === 'reads' ? 'reads' : 'cpu';
  // the application's colocation groups only: another application's distributed tables in this database
  // (a group of their own, or Citus' default one) are not this one's tenants
  const groups = await tenantTablesByColocation(sequelize);
  if (groups.size === 0) return [];
  const found = (await sequelize.query(
    `SELECT colocation_id, tenant_attribute,
            sum(query_count_${suffix})::int AS queries, sum(read_count_${suffix})::int AS reads, sum(cpu_usage_${suffix})::float8 AS cpu
       FROM citus_stat_tenants
      WHERE colocation_id IN (${[...groups.keys()].map((g) => Number(g)).join(', ')})
      GROUP BY colocation_id, tenant_attribute
     HAVING sum(query_count_${suffix}) > 0
      ORDER BY ${measure} DESC, tenant_attribute
      LIMIT ${top}`,
    { type: QueryTypes.SELECT },
  )) as StatRow[];
  return found.map((r) => {
    const model = groups.get(Number(r.colocation_id));
    return {
      tenant: typedId(r.tenant_attribute, model),
      ...(model ? { model: model.name } : {}),
      colocationId: r.colocation_id,
      queries: r.queries,
      reads: r.reads,
      cpuSeconds: r.cpu,
    };
  });
}

/** Options of `isolateTenant`. */
export interface IsolateTenantOptions {
  /**
   * The tenant table to isolate on (every table colocated with it follows). Needed only when the
   * application has several tenant tables (tenant dimensions).
   */
  model?: AnyModelStatic;
  /**
   * How Citus copies the tenant's rows: `'auto'` (logical replication when every table has a primary key
   * or replica identity; needs `wal_level = logical` on the workers), `'force_logical'`, or
   * `'block_writes'` (writes to the shard wait while it is copied; needs no logical replication).
   * @default 'auto'
   */
  transferMode?: 'auto' | 'force_logical' | 'block_writes';
}

/** Where an isolated tenant's shards are: one per colocated table, all on one node. */
export interface IsolatedTenant {
  tenant: TenantId;
  /** False when the tenant already had shards of its own (nothing was done). */
  changed: boolean;
  shards: Array<{ table: string; shardId: number; node: string; port: number }>;
}

/** The tenant table to isolate on: the one given, else the application's only one. */
function tenantTable(sequelize: Sequelize, given: AnyModelStatic | undefined, operation: string): AnyModelStatic {
  if (given) {
    if (!tenantMeta(given)?.isTenantTable) {
      throw new MultitenantError(`option model must be a tenant table (a model whose tenantKey is its primary key)`, {
        model: given.name,
        operation,
      });
    }
    return given;
  }
  const tables = models(sequelize).filter((m) => tenantMeta(m)?.isTenantTable);
  if (tables.length === 1) return tables[0] as AnyModelStatic;
  throw new MultitenantError(
    tables.length === 0
      ? 'no tenant table is defined (a model whose tenantKey is its primary key): isolate on which table?'
      : `several tenant tables are defined (${tables.map((m) => m.name).join(', ')}): pass { model } to say which`,
    { operation },
  );
}

/** What Citus said, with the fix for the refusals a first isolation meets (internal; exported for its test). */
export function isolationError(err: unknown, model: string, tenant: TenantId): MultitenantError {
  const original = (err as { original?: { message?: string; detail?: string; hint?: string } }).original;
  const said = [original?.message ?? (err as Error).message, original?.detail, original?.hint].filter(Boolean).join('. ');
  let fix = '';
  if (/wal_level/.test(said)) {
    fix = " Fix: set wal_level = logical in every worker's postgresql.conf and restart them, or pass { transferMode: 'block_writes' }.";
  } else if (/output plugin/.test(said)) {
    fix =
      " Fix: let PostgreSQL load Citus' logical decoding plugin on every node (output_plugin_libraries = 'pgoutput, citus' where the setting exists, e.g. Debian's PostgreSQL 15.19+), or pass { transferMode: 'block_writes' }.";
  } else if (/replica identity|primary key/i.test(said)) {
    fix = " Fix: give every colocated table a primary key (with the tenant column), or pass { transferMode: 'block_writes' }.";
  }
  return new MultitenantError(`Citus refused to isolate tenant ${String(tenant)}: ${said}.${fix}`, {
    model,
    operation: 'isolateTenant',
  });
}

async function shardsOf(sequelize: Sequelize, table: TableName, type: string, id: TenantId): Promise<IsolatedTenant['shards']> {
  return (await sequelize.query(
    `SELECT p.logicalrelid::regclass::text AS "table", s.shardid::int AS "shardId", s.nodename AS node, s.nodeport::int AS port
       FROM pg_dist_partition p
       JOIN citus_shards s ON s.table_name = p.logicalrelid
      WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = to_regclass(${regclass(sequelize, table)}))
        AND s.shardid = get_shard_id_for_distribution_column(p.logicalrelid, $1::${type})
      ORDER BY 1`,
    { type: QueryTypes.SELECT, bind: [typeof id === 'bigint' ? id.toString() : id] },
  )) as IsolatedTenant['shards'];
}

/**
 * Gives one tenant shards of its own in every table colocated with the tenant table (Citus
 * `isolate_tenant_to_new_shard(..., 'CASCADE')`), so that it can be moved to a node of its own
 * (`citus_move_shard_placement`) while the other tenants stay where they are. Its queries stay router
 * queries. Idempotent: a tenant that already has shards of its own is left as it is (`changed: false`).
 * Needs Citus; a refusal from Citus (e.g. `wal_level`) is a MultitenantError with the fix.
 * @example
 * const { shards } = await isolateTenant(sequelize, bigStore);
 * // then: SELECT citus_move_shard_placement(<shards[0].shardId>, '<from host>', <port>, '<to host>', <port>);
 */
export async function isolateTenant(
  sequelize: Sequelize,
  tenant: TenantInput,
  options: IsolateTenantOptions = {},
): Promise<IsolatedTenant> {
  const operation = 'isolateTenant';
  checkOptions(
    operation,
    options,
    { model: 'function', transferMode: { oneOf: ['auto', 'force_logical', 'block_writes'] } },
    'nothing was sent',
  );
  const model = tenantTable(sequelize, options.model, operation);
  const meta = tenantMeta(model);
  if (!meta) throw new MultitenantError('option model must be a tenant table', { model: model.name, operation });
  const details = { model: model.name, operation };
  const normalized = normalizeTenant(tenant, details);
  if (normalized.many) throw new MultitenantError('isolate one tenant at a time', { ...details, tenant: tenantIdOf(normalized) });
  assertFits(normalized, meta, { details });
  const id = tenantIdOf(normalized) as TenantId;
  const mode = options.transferMode ?? 'auto';
  await requireCitus(sequelize, operation);
  const table = model.getTableName() as TableName;
  const [column] = await rows<{ type: string }>(
    sequelize,
    `SELECT format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
      WHERE a.attrelid = to_regclass(${regclass(sequelize, table)}) AND a.attname = '${meta.column.replace(/'/g, "''")}'`,
  );
  if (!column) throw new MultitenantError(`table ${String(table)} has no column ${meta.column} (run sync first)`, details);
  // (format_type gives a type name PostgreSQL reads back: bigint, integer, uuid, text, character varying(255))
  const type = column.type;
  // the whole colocation group is split: refused while it holds another application's tables
  const group = await distributionOf(sequelize, table, {});
  const outside = group?.kind === 'hash' ? await tablesOutsideApplication(sequelize, group.colocation) : [];
  if (outside.length > 0) {
    throw new MultitenantError(
      `the colocation group of ${bare(table)} also holds ${outside.join(', ')}, which no model of this application defines: isolating tenant ${String(id)} would split their shards too. ` +
        `Give the application's tables a group of their own first (npx sequelize-multitenant doctor prints the statements: update_distributed_table_colocation(..., colocate_with => 'none')); nothing was changed`,
      { ...details, tenant: id },
    );
  }
  const before = await shardsOf(sequelize, table, type, id);
  const isolated = await rows<{ n: number }>(
    sequelize,
    `SELECT count(*)::int AS n FROM pg_dist_shard WHERE shardid = ${Number(before[0]?.shardId ?? 0)} AND shardminvalue = shardmaxvalue`,
  );
  if (before.length > 0 && (isolated[0]?.n ?? 0) > 0) return { tenant: id, changed: false, shards: before };
  try {
    await sequelize.query(
      `SELECT isolate_tenant_to_new_shard(${regclass(sequelize, table)}, $1::${type}, 'CASCADE', shard_transfer_mode => '${mode}')`,
      { bind: [typeof id === 'bigint' ? id.toString() : id] },
    );
  } catch (err) {
    throw isolationError(err, model.name, id);
  }
  return { tenant: id, changed: true, shards: await shardsOf(sequelize, table, type, id) };
}
