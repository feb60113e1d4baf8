// What every lifecycle operation checks first: the instance has multitenant(), the tenant is one tenant
// whose id fits every tenant column, and whether it exists.
import { createRequire } from 'node:module';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { LifecycleInterruptedError, MultitenantError } from '../errors';
import { tenantMeta } from '../models';
import { ident } from '../schema/sql';
import { isInstalled } from '../state';
import { assertFits, columnKey, normalizeTenant, type Tenant, type TenantId } from '../tenant';
import type { TenantTable } from './tables';

/** The `format` of a manifest: what `importTenant` accepts. */
export const MANIFEST_FORMAT = 'sequelize-multitenant/tenant-export';

/** One tenant, as the lifecycle operations use it. */
export interface LifecycleTenant {
  /** As the application gave it (canonical for errors and the manifest). */
  readonly id: TenantId;
  /** As SQL binds it (a bigint as text). */
  readonly value: number | string;
  readonly tenant: Tenant;
}

/** The library's version, for manifests. */
export function libraryVersion(): string {
  return (createRequire(__filename)('../../package.json') as { version: string }).version;
}

/** Refuses what no lifecycle operation can run on: an instance without multitenant(), several tenants, a bad id. */
export function lifecycleTenant(sequelize: Sequelize, tenant: unknown, operation: string): LifecycleTenant {
  if (!sequelize || typeof sequelize.getQueryInterface !== 'function' || !isInstalled(sequelize)) {
    throw new MultitenantError('it takes a Sequelize instance with multitenant() installed', { operation });
  }
  const normalized = normalizeTenant(tenant, { operation });
  if (normalized.many) {
    throw new MultitenantError(`it takes one tenant, got ${normalized.ids.length}: run it once per tenant`, {
      operation,
      tenant: [...normalized.ids],
    });
  }
  const id = normalized.ids[0] as TenantId;
  return { id, value: typeof id === 'bigint' ? id.toString() : id, tenant: normalized };
}

/** Refuses a tenant id that does not fit a table's tenant column ('abc' for an integer column), or no table at all. */
export function assertFitsTables(one: LifecycleTenant, tables: readonly TenantTable[], operation: string): void {
  if (tables.length === 0) {
    throw new MultitenantError(`no model of this instance has a tenantKey, so no table holds a tenant's rows`, {
      operation,
      tenant: one.id,
    });
  }
  for (const t of tables) {
    const meta = tenantMeta(t.model);
    if (meta) assertFits(one.tenant, meta, { details: { model: meta.name, operation, tenant: one.id } });
  }
}

/**
 * True when the tenant exists: its row in the tenant table, or — with no tenant table among the models —
 * any row of it in any tenant table.
 */
export async function tenantExists(
  sequelize: Sequelize,
  tables: readonly TenantTable[],
  tenant: LifecycleTenant,
  transaction?: Transaction,
): Promise<boolean> {
  const tenantTable = tables.find((t) => t.isTenantTable);
  for (const t of tenantTable ? [tenantTable] : tables) {
    const found = await sequelize.query(`SELECT 1 AS one FROM ${t.quoted} WHERE ${ident(sequelize, t.column, true)} = $1 LIMIT 1`, {
      bind: [tenant.value],
      type: QueryTypes.SELECT,
      transaction,
    });
    if (found.length > 0) return true;
  }
  return false;
}

/**
 * Whether two ids are one tenant as the tables' tenant column reads them ('01' and 1 for an integer
 * column); an id that is no tenant id at all is nobody's.
 */
export function sameTenantIn(tables: readonly TenantTable[]): (a: unknown, b: unknown) => boolean {
  const meta = tenantMeta(tables[0]?.model);
  const key = (id: unknown) => (meta ? columnKey(id, meta) : String(id));
  return (a, b) => {
    const ka = key(a);
    return ka !== undefined && ka === key(b);
  };
}

/** The tenant's rows in one table. */
export async function countRows(sequelize: Sequelize, t: TenantTable, tenant: LifecycleTenant, transaction?: Transaction): Promise<number> {
  const [row] = await sequelize.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${t.quoted} WHERE ${ident(sequelize, t.column, true)} = $1`,
    { bind: [tenant.value], type: QueryTypes.SELECT, transaction },
  );
  return Number(row?.n ?? 0);
}

/**
 * Stops a lifecycle operation between two statements when its signal was aborted: `done` is what was
 * finished, `after` says what that means for the data (kept, rolled back, incomplete).
 */
export function stopIfAborted(
  signal: AbortSignal | undefined,
  operation: string,
  tenant: LifecycleTenant,
  done: ReadonlyArray<{ table: string; rows: number }>,
  after: string,
): void {
  if (!signal?.aborted) return;
  const rows = done.reduce((sum, d) => sum + d.rows, 0);
  const where = done.filter((d) => d.rows > 0).map((d) => `${d.table} ${d.rows}`);
  throw new LifecycleInterruptedError(`interrupted after ${rows} row(s)${where.length ? ` (${where.join(', ')})` : ''}: ${after}`, {
    operation,
    tenant: tenant.id,
    done: done.map((d) => ({ table: d.table, rows: d.rows })),
  });
}
