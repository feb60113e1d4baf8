// Under `rls: true`, row-level security is never silently off. The policies are made by the sync paths
// the library sees; a tenant table that has none (created by plain Sequelize, by a migration without
// enableRowLevelSecurity, by a sync that ran before the plugin was installed) would show every tenant's
// rows to raw SQL. So the first statement that names a tenant table — its rows: ORM or raw, a DO block's
// code included; DDL and catalog queries are not about its rows — is preceded, once per table and
// instance, by a look at the catalog: ENABLE, FORCE and the library's policy, or a MultitenantError
// before the statement is sent. Inside withoutTenant (which sees every row anyway) nothing is checked.
import type { Sequelize } from 'sequelize';
import { currentFrame } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { metaOf, models } from '../schema/graph';
import { bare, qualified, type TableName, tableKey } from '../schema/sql';
import { literal, type PgConnection } from '../settings';
import { namesIn, shapeOf } from '../statements';
import { tenantIdOf } from '../tenant';
import { POLICY_NAME } from './names';

/** Statements that are not about rows: the schema, settings, transaction control (TRUNCATE is refused apart). */
const NOT_ROWS = new Set([
  'CREATE',
  'ALTER',
  'DROP',
  'COMMENT',
  'GRANT',
  'REVOKE',
  'SECURITY',
  'SET',
  'RESET',
  'SHOW',
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
  'ANALYZE',
  'VACUUM',
  'REINDEX',
  'CLUSTER',
  'DISCARD',
  'LISTEN',
  'NOTIFY',
  'UNLISTEN',
  'DEALLOCATE',
  'TRUNCATE',
]);

interface Pending {
  model: AnyModelStatic;
  table: TableName;
  name: string;
}

/** Per instance: the tenant tables proven to hold their policy (tableKey), and what remains to check. */
const proven = new WeakMap<Sequelize, Set<string>>();
const pendingCache = new WeakMap<Sequelize, { count: number; size: number; pending: Pending[] }>();

function pendingOf(sequelize: Sequelize): Pending[] {
  const all = models(sequelize);
  const done = proven.get(sequelize) ?? new Set<string>();
  const cached = pendingCache.get(sequelize);
  if (cached && cached.count === all.length && cached.size === done.size) return cached.pending;
  const pending: Pending[] = [];
  for (const model of all) {
    if (!metaOf(model)) continue;
    const table = model.getTableName() as TableName;
    if (!done.has(tableKey(table))) pending.push({ model, table, name: bare(table) });
  }
  pendingCache.set(sequelize, { count: all.length, size: done.size, pending });
  return pending;
}

/** Refuses a statement that names a tenant table without ENABLE + FORCE ROW LEVEL SECURITY and the library's policy. */
export async function assertPoliciesInPlace(sequelize: Sequelize, sql: string, connection: PgConnection): Promise<void> {
  const frame = currentFrame();
  if (frame?.bypass) return;
  const pending = pendingOf(sequelize);
  if (pending.length === 0) return;
  const shape = shapeOf(sql);
  if (shape.readable && shape.heads.every((head) => NOT_ROWS.has(head))) return;
  const names = namesIn(sql);
  for (const p of pending) {
    if (names && !names.has(p.name)) continue;
    const result = (await connection.query(
      `SELECT c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
              EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = '${POLICY_NAME}') AS policy
         FROM pg_class c WHERE c.oid = to_regclass(${literal(qualified(sequelize, p.table))})`,
    )) as { rows?: Array<{ enabled: boolean; forced: boolean; policy: boolean }> };
    const row = result.rows?.[0];
    if (!row) continue; // no such table (yet): the statement fails on its own
    if (row.enabled && row.forced && row.policy) {
      const done = proven.get(sequelize) ?? new Set<string>();
      done.add(tableKey(p.table));
      proven.set(sequelize, done);
      continue;
    }
    const missing = [
      !row.enabled && 'ENABLE ROW LEVEL SECURITY',
      !row.forced && 'FORCE ROW LEVEL SECURITY',
      !row.policy && `the policy ${POLICY_NAME}`,
    ]
      .filter(Boolean)
      .join(', ');
    throw new MultitenantError(
      `table ${p.name} has no row-level security (rls: true; missing: ${missing}), so this statement would reach every tenant's rows; it was not sent. Run sequelize.sync() (it makes the policy), or enableRowLevelSecurity(queryInterface, '${p.name}', { column }) in a migration: ${sql.slice(0, 200)}`,
      { model: p.model.name, operation: 'rls', tenant: frame?.tenant ? tenantIdOf(frame.tenant) : undefined },
    );
  }
}
