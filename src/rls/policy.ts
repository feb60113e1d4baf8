import type { QueryInterface, Sequelize, Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import { notify } from '../notice';
import { checkOptions, type OptionSpec } from '../options';
import { bare, hasCitus, ident, qualified, regclass, rows, run, type SqlOptions, type TableName } from '../schema/sql';
import type { NoticeHandler } from '../state';
import { BYPASS_SETTING, POLICY_NAME, TENANT_SETTING, TRUNCATE_FUNCTION, TRUNCATE_TRIGGER, TRUNCATE_TRIGGER_TYPE } from './names';

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
/** What the migration helpers take (RowLevelSecurityOptions). */
const RLS_HELPER_OPTIONS: OptionSpec = { transaction: 'object', notice: 'notice', logging: 'logging' };
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
  /** The schema the table is in (its TRUNCATE trigger function lives there). */
  schema: string;
  /** The library's TRUNCATE trigger: null — none; false — one of that name, but disabled or not the library's; true — in place. */
  trigger: boolean | null;
  /** The source of the trigger function in the table's schema, null when there is none. */
  functionSource: string | null;
}

/** `pg_trigger` holds the library's TRUNCATE trigger on table `c`, enabled, calling its function (SQL, for catalog reads). */
export function truncateTriggerInPlace(c: string): string {
  return `(SELECT t.tgenabled IN ('O', 'A') AND t.tgtype = ${TRUNCATE_TRIGGER_TYPE} AND f.proname = '${TRUNCATE_FUNCTION}'
      FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid WHERE t.tgrelid = ${c}.oid AND t.tgname = '${TRUNCATE_TRIGGER}')`;
}

async function stateOf(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<RlsState | undefined> {
  const found = await rows<RlsState>(
    sequelize,
    `SELECT c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       (SELECT coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' / ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
          FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = '${POLICY_NAME}') AS policy,
       (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname <> '${POLICY_NAME}') AS others,
       n.nspname AS schema,
       ${truncateTriggerInPlace('c')} AS trigger,
       (SELECT f.prosrc FROM pg_proc f WHERE f.pronamespace = c.relnamespace AND f.proname = '${TRUNCATE_FUNCTION}' AND f.pronargs = 0 LIMIT 1) AS "functionSource"
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(${regclass(sequelize, table)})`,
    options,
  );
  return found[0];
}

/**
 * The body of the TRUNCATE trigger function. Row-level security does not apply to TRUNCATE: without this,
 * a TRUNCATE run under a tenant (a DO block, a function created earlier) empties the table for every
 * tenant. It lets one through only with the bypass setting on (`withoutTenant`); the catalog functions it
 * calls are schema-qualified, so no search_path changes what it does.
 */
export const TRUNCATE_FUNCTION_BODY = `
BEGIN
  IF pg_catalog.current_setting('${BYPASS_SETTING}', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION USING
    ERRCODE = 'insufficient_privilege',
    MESSAGE = pg_catalog.format('TRUNCATE of %I.%I refused (sequelize-multitenant, rls: true): row-level security does not apply to TRUNCATE, which would empty the table for every tenant', TG_TABLE_SCHEMA, TG_TABLE_NAME),
    HINT = 'Run it inside withoutTenant (which sets ${BYPASS_SETTING} = on), or delete the tenant''s rows instead.';
END
`;

/** A dollar-quote tag that does not occur in `text`. */
function dollarTag(text: string): string {
  let tag = 'sequelize_multitenant';
  while (text.includes(`$${tag}$`)) tag += '_';
  return `$${tag}$`;
}

/** The trigger function, qualified by the schema of the table it guards (its name as the catalog holds it). */
const truncateFunction = (sequelize: Sequelize, schema: string) => `${ident(sequelize, schema, true)}.${TRUNCATE_FUNCTION}`;

/**
 * On Citus, a trigger on a distributed or reference table is refused ("triggers are not supported on
 * distributed tables") unless `citus.enable_unsafe_triggers` is on; "unsafe" is about row triggers that
 * reach other shards — a statement-level TRUNCATE trigger stays on the tables the coordinator (and each
 * worker's metadata) holds, never on the shards. The setting is turned on for this one statement only and
 * given back its value, in a DO block, inside or outside a transaction.
 */
function withUnsafeTriggers(sql: string): string {
  const text = `E'${sql.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  const tag = dollarTag(text);
  return `DO ${tag} DECLARE was text := pg_catalog.current_setting('citus.enable_unsafe_triggers'); BEGIN PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true); EXECUTE ${text}; PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', was, true); END ${tag}`;
}

/**
 * The statements that put the library's TRUNCATE trigger on a table in the state `state` describes: its
 * function (created, or replaced when its source differs) and the trigger (created; a disabled one or one
 * of that name calling another function is dropped and made again). None when both are in place.
 */
export function truncateGuardStatements(sequelize: Sequelize, table: TableName, state: RlsState, citus: boolean): string[] {
  const fn = truncateFunction(sequelize, state.schema);
  const out: string[] = [];
  if (state.functionSource !== TRUNCATE_FUNCTION_BODY) {
    const tag = dollarTag(TRUNCATE_FUNCTION_BODY);
    out.push(`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS ${tag}${TRUNCATE_FUNCTION_BODY}${tag}`);
  }
  if (state.trigger === false) out.push(dropTruncateTriggerSql(sequelize, table, citus));
  if (state.trigger !== true) out.push(createTruncateTriggerSql(sequelize, table, state.schema, citus));
  return out;
}

/** CREATE TRIGGER of the library's TRUNCATE trigger on a table of schema `schema` (on Citus, with the unsafe-triggers setting for it). */
export function createTruncateTriggerSql(sequelize: Sequelize, table: TableName, schema: string, citus: boolean): string {
  const sql = `CREATE TRIGGER ${TRUNCATE_TRIGGER} BEFORE TRUNCATE ON ${qualified(sequelize, table)} FOR EACH STATEMENT EXECUTE FUNCTION ${truncateFunction(sequelize, schema)}()`;
  return citus ? withUnsafeTriggers(sql) : sql;
}

/** DROP TRIGGER of the library's TRUNCATE trigger (on Citus, with the unsafe-triggers setting for it). */
export function dropTruncateTriggerSql(sequelize: Sequelize, table: TableName, citus: boolean): string {
  const sql = `DROP TRIGGER ${TRUNCATE_TRIGGER} ON ${qualified(sequelize, table)}`;
  return citus ? withUnsafeTriggers(sql) : sql;
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
 * and FORCE ROW LEVEL SECURITY, one policy (USING and WITH CHECK) that shows and accepts only rows
 * of the current tenant(s), and a `BEFORE TRUNCATE` trigger that refuses a TRUNCATE outside
 * `withoutTenant` (row-level security does not apply to TRUNCATE). The same on every partition and
 * inheritance child. Idempotent: run again, it changes nothing and creates no second policy or trigger.
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
  checkOptions(operation, options, { ...RLS_HELPER_OPTIONS, column: 'string' }, 'nothing was changed', { required: ['column'] });
  if (options.column === '') {
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
    // the function is shared by the tables of a schema: read again, another table may just have made it
    const guard = truncateGuardStatements(sequelize, each, (await stateOf(sequelize, each, options)) ?? was, citus);
    for (const sql of guard) await run(sequelize, sql, options);
    const after = await stateOf(sequelize, each, options);
    if (!(was.enabled && was.forced && was.policy === after?.policy) || guard.length > 0) changed = true;
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
 * Undoes `enableRowLevelSecurity`: drops the library's policy and TRUNCATE trigger (and the trigger
 * function once no table uses it), and — when the table has no other policy — NO FORCE and DISABLE ROW
 * LEVEL SECURITY (with other policies left, row-level security stays on and a notice says so). Resolves
 * to whether it changed anything.
 * @example
 * await disableRowLevelSecurity(queryInterface, 'products');
 */
export async function disableRowLevelSecurity(target: Target, table: TableName, options: RowLevelSecurityOptions = {}): Promise<boolean> {
  const sequelize = sequelizeOf(target);
  const operation = 'disableRowLevelSecurity';
  checkOptions(operation, options, RLS_HELPER_OPTIONS, 'nothing was changed');
  assertPostgres(sequelize, operation, table);
  const before = await stateOf(sequelize, table, options);
  if (!before) throw new MultitenantError(`table ${bare(table)} does not exist; nothing was changed`, { model: bare(table), operation });
  const citus = await hasCitus(sequelize, { transaction: options.transaction });
  let changed = false;
  for (const each of [table, ...(await descendants(sequelize, table, options))]) {
    const was = each === table ? before : await stateOf(sequelize, each, options);
    if (was && (await disableOne(sequelize, each, was, citus, options))) changed = true;
  }
  return changed;
}

async function disableOne(
  sequelize: Sequelize,
  table: TableName,
  before: RlsState,
  citus: boolean,
  options: RowLevelSecurityOptions,
): Promise<boolean> {
  const t = qualified(sequelize, table);
  if (before.policy !== null) await run(sequelize, `DROP POLICY ${POLICY_NAME} ON ${t}`, options);
  const trigger = await dropTruncateGuard(sequelize, table, before, citus, options);
  if (before.others > 0) {
    notify(
      sequelize,
      `disableRowLevelSecurity: ${bare(table)} has ${before.others} other polic${before.others > 1 ? 'ies' : 'y'}: row-level security stays enabled`,
      options.notice,
    );
    return before.policy !== null || trigger;
  }
  if (before.forced) await run(sequelize, `ALTER TABLE ${t} NO FORCE ROW LEVEL SECURITY`, options);
  if (before.enabled) await run(sequelize, `ALTER TABLE ${t} DISABLE ROW LEVEL SECURITY`, options);
  return before.policy !== null || trigger || before.forced || before.enabled;
}

/** Drops the library's TRUNCATE trigger from a table, and its function once no trigger calls it. True when it dropped the trigger. */
async function dropTruncateGuard(
  sequelize: Sequelize,
  table: TableName,
  state: RlsState,
  citus: boolean,
  options: SqlOptions,
): Promise<boolean> {
  if (state.trigger === null) return false;
  await run(sequelize, dropTruncateTriggerSql(sequelize, table, citus), options);
  const schema = state.schema.replace(/'/g, "''");
  const [unused] = await rows<{ unused: boolean }>(
    sequelize,
    `SELECT EXISTS (SELECT 1 FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
                     WHERE n.nspname = '${schema}' AND f.proname = '${TRUNCATE_FUNCTION}' AND f.pronargs = 0
                       AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = f.oid)) AS unused`,
    options,
  );
  if (unused?.unused) await run(sequelize, `DROP FUNCTION IF EXISTS ${truncateFunction(sequelize, state.schema)}()`, options);
  return true;
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
 * Distributes a table (`distribute`: Citus's create_distributed_table) that may carry the library's
 * row-level security, on it and on its partitions. Citus refuses a policy with sub-selects (the PostgreSQL
 * form), so the library's policy made on plain PostgreSQL is turned into the Citus form first; and it
 * refuses to distribute a table that has triggers ("cannot distribute relation ... because it has
 * triggers"), so the library's TRUNCATE trigger is dropped first and made again once the table is
 * distributed — or, when Citus refused, on the table still local (outside a caller's transaction, which
 * Citus's refusal aborted: the DROP is rolled back with it). A trigger of the application's own is left
 * alone: Citus refuses the table as before.
 */
export async function distributeWithRls<T>(
  sequelize: Sequelize,
  table: TableName,
  column: string,
  options: SqlOptions,
  distribute: () => Promise<T>,
): Promise<T> {
  // a partitioned table is distributed with its partitions: Citus looks at each of them
  const tables = [table, ...(await descendants(sequelize, table, options))];
  const guarded: TableName[] = [];
  for (const each of tables) {
    const state = await stateOf(sequelize, each, options);
    if (!state) continue;
    if (state.policy && /\bSELECT\b/i.test(state.policy)) {
      const type = await columnType(sequelize, each, column, options);
      if (type) {
        const condition = policyCondition(sequelize, column, type, true);
        const t = qualified(sequelize, each);
        await run(sequelize, `ALTER POLICY ${POLICY_NAME} ON ${t} USING ${condition} WITH CHECK ${condition}`, options);
      }
    }
    if (state.trigger !== null) guarded.push(each);
  }
  if (guarded.length === 0) return distribute();
  // (still local tables: no Citus setting needed)
  for (const each of guarded) await run(sequelize, dropTruncateTriggerSql(sequelize, each, false), options);
  const again = async () => {
    for (const each of guarded) {
      const now = await stateOf(sequelize, each, options);
      if (now) for (const sql of truncateGuardStatements(sequelize, each, now, true)) await run(sequelize, sql, options);
    }
  };
  let result: T;
  try {
    result = await distribute();
  } catch (err) {
    // (inside a transaction Citus's refusal aborted, the DROPs are rolled back with it)
    if (!options.transaction) await again().catch(() => undefined);
    throw err;
  }
  await again();
  return result;
}
