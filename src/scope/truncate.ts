import { QueryTypes, type Sequelize } from 'sequelize';
import { currentFrame } from '../context';
import { MissingTenantError, TenantMismatchError } from '../errors';
import { tenantMeta } from '../models';
import { type PluginState, vetStatement } from '../state';
import { tenantIdOf } from '../tenant';
import { scopingModel } from './tables';

// `TRUNCATE global_table CASCADE` also empties every table whose foreign keys reach it, for every tenant.
// Under a tenant, and in strict mode outside withoutTenant, that is refused when a tenant table is reached.

/** The tables TRUNCATE ... CASCADE empties: the table and, transitively, every table referencing it. */
const REACHED = `WITH RECURSIVE reached(oid) AS (
  SELECT $1::regclass::oid
  UNION
  SELECT c.conrelid FROM pg_catalog.pg_constraint c JOIN reached r ON c.confrelid = r.oid WHERE c.contype = 'f'
)
SELECT n.nspname AS "schema", t.relname AS "table"
FROM reached JOIN pg_catalog.pg_class t ON t.oid = reached.oid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace`;

export async function assertTruncateStaysGlobal(
  state: PluginState,
  sequelize: Sequelize,
  tableName: unknown,
  options: Record<string, unknown>,
): Promise<void> {
  const frame = currentFrame();
  if (frame?.bypass || (!frame?.tenant && !state.options.strict)) return;
  const quoted = (sequelize.getQueryInterface().queryGenerator as unknown as { quoteTable(t: unknown): string }).quoteTable(tableName);
  const rows = (await sequelize.query(REACHED, {
    bind: [quoted],
    type: QueryTypes.SELECT,
    transaction: options.transaction as never,
  })) as Array<{ schema: string; table: string }>;
  const reached = rows
    .map((r) => scopingModel(sequelize, undefined, { tableName: r.table, schema: r.schema }))
    .filter((m) => m && tenantMeta(m))
    .map((m) => m?.name as string);
  if (reached.length === 0) {
    // proven against the catalog: the auditor (which cannot see foreign keys) lets this TRUNCATE through once
    const generator = sequelize.getQueryInterface().queryGenerator as unknown as {
      truncateTableQuery?(t: unknown, o: Record<string, unknown>): string;
    };
    const sql = generator.truncateTableQuery?.(tableName, options);
    if (sql) vetStatement(state, sql);
    return;
  }
  const details = { model: reached[0], operation: 'truncate', tenant: frame?.tenant && tenantIdOf(frame.tenant) };
  const what = `TRUNCATE ${quoted} CASCADE reaches the tenant tables of ${reached.join(', ')} and would empty them for every tenant`;
  if (!frame?.tenant) {
    throw new MissingTenantError(`${what}: run it inside withoutTenant(...) (strict mode); nothing was sent`, details);
  }
  throw new TenantMismatchError(
    `${what}: run it inside withoutTenant(...), or destroy the tenant's rows instead; nothing was sent`,
    details,
  );
}
