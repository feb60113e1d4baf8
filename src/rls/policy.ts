import type { QueryInterface, Sequelize, Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import { notify } from '../notice';
import { bare, hasCitus, ident, qualified, regclass, rows, run, type SqlOptions, type TableName } from '../schema/sql';
import type { NoticeHandler } from '../state';
import { BYPASS_SETTING, POLICY_NAME, TENANT_SETTING } from './names';

/** Options of `enableRowLevelSecurity` / `disableRowLevelSecurity`. */
export interface RowLevelSecurityOptions {
  /** Run inside this transaction (umzug / sequelize-cli migrations often pass one). */
  transaction?: Transaction;
  /** Where notices go. Default: `console.warn`; `false`: silent. */
  notice?: NoticeHandler;
  /** Sequelize's `logging` for the statements it sends. */
  logging?: boolean | ((sql: string) => void);
}

type Target = Sequelize | QueryInterface;
const sequelizeOf = (target: Target): Sequelize => ('sequelize' in target ? (target as QueryInterface).sequelize : target) as Sequelize;

/**
 * The policy's condition for a tenant column of PostgreSQL type `type` (`typname`): the column equals one
 * of the tenant values in the setting (cast to the column's own type where an index can serve it), or
 * the bypass setting is on. An unset setting (NULL) or an empty one matches no row: fail closed.
 * On PostgreSQL the settings are read in scalar sub-selects, which the planner evaluates once per
 * statement (InitPlans) instead of once per row; Citus refuses sub-selects in policies of distributed
 * tables, so there they are read inline.
 */
export function policyCondition(sequelize: Sequelize, column: string, type: string, citus: boolean): string {
  const once = (expr: string) => (citus ? expr : `(SELECT ${expr})`);
  const list = (array: string) => {
    const read = `NULLIF(current_setting('${TENANT_SETTING}', true), '')::${array}`;
    return citus ? read : `(SELECT ${read})::${array}`;
  };
  let match: string;
  if (type === 'int2' || type === 'int4' || type === 'int8') match = `${ident(sequelize, column)} = ANY (${list('bigint[]')})`;
  else if (type === 'uuid') match = `${ident(sequelize, column)} = ANY (${list('uuid[]')})`;
  else if (type === 'text' || type === 'varchar' || type === 'bpchar') match = `${ident(sequelize, column)} = ANY (${list('text[]')})`;
  else match = `${ident(sequelize, column)}::text = ANY (${list('text[]')})`;
  return `(${once(`current_setting('${BYPASS_SETTING}', true) = 'on'`)} OR ${match})`;
}

interface RlsState {
  enabled: boolean;
  forced: boolean;
  policy: string | null;
  others: number;
}

async function stateOf(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<RlsState | undefined> {
  const found = await rows<RlsState>(
    sequelize,
    `SELECT c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       (SELECT coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' / ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
          FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = '${POLICY_NAME}') AS policy,
       (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname <> '${POLICY_NAME}') AS others
     FROM pg_class c WHERE c.oid = to_regclass(${regclass(sequelize, table)})`,
    options,
  );
  return found[0];
}

async function columnType(sequelize: Sequelize, table: TableName, column: string, options: SqlOptions): Promise<string | undefined> {
  const found = await rows<{ type: string }>(
    sequelize,
    `SELECT t.typname AS type FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = to_regclass(${regclass(sequelize, table)}) AND a.attname = '${column.replace(/'/g, "''")}' AND a.attnum > 0 AND NOT a.attisdropped`,
    options,
  );
  return found[0]?.type;
}

/** The statements `enableRowLevelSecurity` sends for a table whose tenant column has type `type`. */
export function enableStatements(
  sequelize: Sequelize,
  table: TableName,
  column: string,
  type: string,
  policyExists: boolean,
  citus: boolean,
): string[] {
  const t = qualified(sequelize, table);
  const condition = policyCondition(sequelize, column, type, citus);
  return [
    `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`,
    policyExists
      ? `ALTER POLICY ${POLICY_NAME} ON ${t} USING ${condition} WITH CHECK ${condition}`
      : `CREATE POLICY ${POLICY_NAME} ON ${t} AS PERMISSIVE FOR ALL USING ${condition} WITH CHECK ${condition}`,
  ];
}

/**
 * Row-level security on one tenant table (what `sync()` does with `rls: true`, for migrations): ENABLE
 * and FORCE ROW LEVEL SECURITY, and one policy (USING and WITH CHECK) that shows and accepts only rows
 * of the current tenant(s). Idempotent: run again, it changes nothing and creates no second policy.
 * Resolves to whether it changed anything. A missing table or column is a MultitenantError before any
 * statement. Works the same on Citus (the statements reach every shard).
 * @example
 * await enableRowLevelSecurity(queryInterface, 'products', { column: 'store_id' });
 */
export async function enableRowLevelSecurity(
  target: Target,
  table: TableName,
  options: RowLevelSecurityOptions & { column: string },
): Promise<boolean> {
  const sequelize = sequelizeOf(target);
  const operation = 'enableRowLevelSecurity';
  if (!options || typeof options.column !== 'string' || options.column === '') {
    throw new MultitenantError('enableRowLevelSecurity needs { column }: the tenant column; nothing was changed', {
      model: bare(table),
      operation,
    });
  }
  assertPostgres(sequelize, operation, table);
  const before = await stateOf(sequelize, table, options);
  if (!before) throw new MultitenantError(`table ${bare(table)} does not exist; nothing was changed`, { model: bare(table), operation });
  const type = await columnType(sequelize, table, options.column, options);
  if (!type) {
    throw new MultitenantError(`table ${bare(table)} has no column ${options.column}; nothing was changed`, {
      model: bare(table),
      operation,
    });
  }
  const citus = await hasCitus(sequelize, { transaction: options.transaction });
  let changed = false;
  // a partition or an inheritance child is a table of its own to PostgreSQL: read directly, it has only
  // its own policies. Each one gets the same; partitions added later need this run again (or sync()).
  for (const each of [table, ...(await descendants(sequelize, table, options))]) {
    const was = each === table ? before : await stateOf(sequelize, each, options);
    if (!was) continue;
    for (const sql of enableStatements(sequelize, each, options.column, type, was.policy !== null, citus))
      await run(sequelize, sql, options);
    const after = await stateOf(sequelize, each, options);
    if (!(was.enabled && was.forced && was.policy === after?.policy)) changed = true;
  }
  return changed;
}

/** The partitions and inheritance children of a table, at every depth. */
async function descendants(
  sequelize: Sequelize,
  table: TableName,
  options: SqlOptions,
): Promise<Array<{ tableName: string; schema: string }>> {
  const found = await rows<{ tableName: string; schema: string }>(
    sequelize,
    `WITH RECURSIVE d(oid) AS (
       SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(${regclass(sequelize, table)})
       UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.oid)
     SELECT c.relname AS "tableName", n.nspname AS schema FROM d JOIN pg_class c ON c.oid = d.oid JOIN pg_namespace n ON n.oid = c.relnamespace
     ORDER BY 2, 1`,
    options,
  );
  return found;
}

/**
 * Undoes `enableRowLevelSecurity`: drops the library's policy, and — when the table has no other policy —
 * NO FORCE and DISABLE ROW LEVEL SECURITY (with other policies left, row-level security stays on and a
 * notice says so). Resolves to whether it changed anything.
 * @example
 * await disableRowLevelSecurity(queryInterface, 'products');
 */
export async function disableRowLevelSecurity(target: Target, table: TableName, options: RowLevelSecurityOptions = {}): Promise<boolean> {
  const sequelize = sequelizeOf(target);
  const operation = 'disableRowLevelSecurity';
  assertPostgres(sequelize, operation, table);
  const before = await stateOf(sequelize, table, options);
  if (!before) throw new MultitenantError(`table ${bare(table)} does not exist; nothing was changed`, { model: bare(table), operation });
  let changed = false;
  for (const each of [table, ...(await descendants(sequelize, table, options))]) {
    const was = each === table ? before : await stateOf(sequelize, each, options);
    if (was && (await disableOne(sequelize, each, was, options))) changed = true;
  }
  return changed;
}

async function disableOne(sequelize: Sequelize, table: TableName, before: RlsState, options: RowLevelSecurityOptions): Promise<boolean> {
  const t = qualified(sequelize, table);
  if (before.policy !== null) await run(sequelize, `DROP POLICY ${POLICY_NAME} ON ${t}`, options);
  if (before.others > 0) {
    notify(
      sequelize,
      `disableRowLevelSecurity: ${bare(table)} has ${before.others} other polic${before.others > 1 ? 'ies' : 'y'}: row-level security stays enabled`,
      options.notice,
    );
    return before.policy !== null;
  }
  if (before.forced) await run(sequelize, `ALTER TABLE ${t} NO FORCE ROW LEVEL SECURITY`, options);
  if (before.enabled) await run(sequelize, `ALTER TABLE ${t} DISABLE ROW LEVEL SECURITY`, options);
  return before.policy !== null || before.forced || before.enabled;
}

function assertPostgres(sequelize: Sequelize, operation: string, table: TableName): void {
  if (sequelize.getDialect() !== 'postgres') {
    throw new MultitenantError(`row-level security needs PostgreSQL (dialect ${sequelize.getDialect()}); nothing was changed`, {
      model: bare(table),
      operation,
    });
  }
}

const warned = new WeakSet<Sequelize>();

/** Once per Sequelize instance: policies protect nothing for a superuser or a BYPASSRLS role. */
export async function warnIfRoleBypasses(sequelize: Sequelize, options: SqlOptions): Promise<void> {
  if (warned.has(sequelize)) return;
  warned.add(sequelize);
  const [role] = await rows<{ name: string; superuser: boolean; bypass: boolean }>(
    sequelize,
    `SELECT rolname AS name, rolsuper AS superuser, rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user`,
    options,
  );
  if (role && (role.superuser || role.bypass)) {
    notify(
      sequelize,
      `rls: the connected role ${role.name} is ${role.superuser ? 'a superuser' : 'a BYPASSRLS role'}: PostgreSQL skips row-level security for it, the policies protect nothing. Connect as a role without SUPERUSER and BYPASSRLS (it may own the tables: the policies are FORCEd)`,
    );
  }
}

/**
 * Before a table is distributed: Citus refuses a policy with sub-selects (the PostgreSQL form), so the
 * library's policy on a table made on plain PostgreSQL is turned into the Citus form first.
 */
export async function policyReadyForCitus(sequelize: Sequelize, table: TableName, column: string, options: SqlOptions): Promise<void> {
  const state = await stateOf(sequelize, table, options);
  if (!state?.policy || !/\bSELECT\b/i.test(state.policy)) return;
  const type = await columnType(sequelize, table, column, options);
  if (!type) return;
  const condition = policyCondition(sequelize, column, type, true);
  await run(sequelize, `ALTER POLICY ${POLICY_NAME} ON ${qualified(sequelize, table)} USING ${condition} WITH CHECK ${condition}`, options);
}
