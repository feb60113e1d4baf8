import type { Sequelize } from 'sequelize';
import { currentFrame, inSchemaWork } from '../context';
import { InvalidTenantError, UnscopedQueryError } from '../errors';
import type { AnyModelStatic } from '../models';
import { sqlValue } from '../scope/scope';
import { scopingModel } from '../scope/tables';
import { addSettingsProvider, literal, type PgConnection, readsOrWritesRows, type WantedSettings } from '../settings';
import { shapeOf } from '../statements';
import { type Tenant, tenantIdOf } from '../tenant';
import { assertPoliciesInPlace } from './enforced';
import { BYPASS_SETTING, TENANT_SETTING } from './names';

/** No tenant: the policy matches no row ('' and NULL alike). */
const NONE: Record<string, string> = { [BYPASS_SETTING]: 'off', [TENANT_SETTING]: '' };
const BYPASS: Record<string, string> = { [BYPASS_SETTING]: 'on', [TENANT_SETTING]: '' };
const CITUS_FIRST: Record<string, string> = { 'citus.propagate_set_commands': 'local' };

const encodings = new WeakMap<Tenant, Record<string, string>>();

/**
 * The tenant as a text array literal: every element double-quoted with `"` and `\` escaped, so a value
 * holding a comma, a brace or a quote stays one element (`acme,beta` is one tenant, not two).
 */
export function encodeTenant(tenant: Tenant): string {
  return `{${tenant.ids
    .map((id) => {
      const text = String(sqlValue(id));
      if (text.includes('\u0000')) {
        throw new InvalidTenantError('a tenant value holding a NUL character cannot be sent to PostgreSQL', {
          operation: 'rls',
          tenant: tenantIdOf(tenant),
          value: id,
        });
      }
      return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    })
    .join(',')}}`;
}

function valuesOf(tenant: Tenant): Record<string, string> {
  let values = encodings.get(tenant);
  if (!values) {
    values = { [BYPASS_SETTING]: 'off', [TENANT_SETTING]: encodeTenant(tenant) };
    encodings.set(tenant, values);
  }
  return values;
}

/** What the current unit of work asks the database to show: its tenant(s), everything, or nothing. */
export function currentSettings(): Record<string, string> {
  const frame = currentFrame();
  if (frame?.bypass) return BYPASS;
  return frame?.tenant ? valuesOf(frame.tenant) : NONE;
}

/**
 * Keeps the tenant settings of every statement `sequelize` sends equal to the current unit of work's
 * tenant. On PostgreSQL: a session `SET`, sent only when the connection holds another value. On Citus,
 * where session settings do not reach the workers: `SET LOCAL` with `citus.propagate_set_commands =
 * 'local'`, once per transaction; a statement outside a transaction runs in a block of its own.
 */
export function installRlsSession(sequelize: Sequelize, isOn: () => boolean): void {
  let citus: boolean | undefined;
  addSettingsProvider(sequelize, async (connection: PgConnection, { sql, inTransaction }): Promise<WantedSettings | undefined> => {
    if (!isOn()) return undefined;
    await assertNoTruncate(sequelize, sql, connection);
    await assertPoliciesInPlace(sequelize, sql, connection);
    if (citus === undefined) {
      const result = (await connection.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)) as { rowCount?: number };
      citus = (result.rowCount ?? 0) > 0;
    }
    const values = currentSettings();
    if (!citus) return { values };
    // a TRUNCATE (or a DO block) inside withoutTenant runs in a block of its own too: the tables' TRUNCATE trigger reads the bypass
    if (!inTransaction && (values === NONE || !(readsOrWritesRows(sql) || (values === BYPASS && mayTruncate(sql))))) return undefined;
    return { values, local: true, before: CITUS_FIRST };
  });
}

/**
 * A TRUNCATE, or a DO block (which may build one at run time): inside withoutTenant on Citus they run in a
 * block of their own with the bypass set, or the tables' TRUNCATE trigger refuses them.
 */
function mayTruncate(sql: string): boolean {
  const heads = shapeOf(sql).heads;
  return heads.includes('TRUNCATE') || heads.includes('DO');
}

const NAME =
  /^\s*("(?:[^"]|"")*"|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)(?:\s*\.\s*("(?:[^"]|"")*"|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*))?\s*\*?\s*(,|$|(?=[A-Za-z]))/;
const part = (p: string) => (p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase());

/** The tables a TRUNCATE names, as PostgreSQL reads them; undefined when they cannot be read. */
function truncated(statement: string): string[] | undefined {
  let rest = statement.replace(/^TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?/i, '');
  const names: string[] = [];
  for (;;) {
    const m = NAME.exec(rest);
    if (!m) return undefined;
    names.push(m[2] ? `${part(m[1] as string)}.${part(m[2])}` : part(m[1] as string));
    rest = rest.slice(m[0].length);
    if (m[3] !== ',') break;
    rest = rest.replace(/^\s*(?:ONLY\s+)?/i, '');
  }
  return /^\s*(?:(?:RESTART|CONTINUE)\s+IDENTITY\s*)?(?:RESTRICT\s*)?$/i.test(rest) ? names : undefined;
}

/**
 * TRUNCATE is not subject to row-level security: under a tenant or with none (outside withoutTenant) a
 * TRUNCATE of a tenant table — a tenant model's, or any table with the library's policy (partitions and
 * inheritance children included) —, one with CASCADE, one whose names cannot be read, and a DO block or
 * a function defined in the same message that holds the word TRUNCATE are refused before they are sent.
 * This reads text; the database's own line is the tables' TRUNCATE trigger (policy.ts), which also
 * refuses what no text shows (a function created earlier). The DDL of the library's own schema work
 * names TRUNCATE (CREATE TRIGGER ... BEFORE TRUNCATE, in a DO block on Citus): there DO and CREATE are
 * let through — a TRUNCATE is not.
 */
async function assertNoTruncate(sequelize: Sequelize, sql: string, connection: PgConnection): Promise<void> {
  if (!/\bTRUNCATE\b/i.test(sql) || currentFrame()?.bypass) return;
  const shape = shapeOf(sql);
  const refuse = (why: string, table: string, statement: string) => {
    const tenant = currentFrame()?.tenant;
    throw new UnscopedQueryError(
      `TRUNCATE is not subject to row-level security: ${why}; run it inside withoutTenant, or delete the tenant's rows: ${statement.slice(0, 200)}`,
      { operation: 'rls', tenant: tenant ? tenantIdOf(tenant) : undefined, table, sql },
    );
  };
  if (!shape.readable) refuse('a message that cannot be read to its end holds TRUNCATE', '', sql);
  for (let i = 0; i < shape.statements.length; i++) {
    const statement = shape.bare[i] as string;
    const head = shape.heads[i];
    if (head === 'DO' || head === 'CREATE') {
      if (!inSchemaWork() && /\bTRUNCATE\b/i.test(shape.statements[i] as string))
        refuse('code in this message runs a TRUNCATE', '', statement);
      continue;
    }
    if (head !== 'TRUNCATE') continue;
    const names = truncated(statement);
    if (!names) refuse('it may reach tenant tables (CASCADE, or a name that cannot be read)', '', statement);
    for (const name of names ?? []) {
      if (tenantModel(sequelize, name) || (await hasPolicy(connection, name))) refuse(`${name} is a tenant table`, name, statement);
    }
  }
}

/**
 * True when the table (a partition, a child, any table) carries the library's policy. `name` was read
 * out of the statement's text (PostgreSQL's own identifier, not a Sequelize table name): it is quoted
 * back by PostgreSQL's rules for to_regclass.
 */
async function hasPolicy(connection: PgConnection, name: string): Promise<boolean> {
  const quoted = name.includes('.')
    ? name
        .split('.')
        .map((p) => `"${p.replace(/"/g, '""')}"`)
        .join('.')
    : `"${name.replace(/"/g, '""')}"`;
  const result = (await connection.query(
    `SELECT 1 FROM pg_policy WHERE polname = 'sequelize_multitenant_isolation' AND polrelid = to_regclass(${literal(quoted)})`,
  )) as { rowCount?: number };
  return (result.rowCount ?? 0) > 0;
}

function tenantModel(sequelize: Sequelize, name: string): AnyModelStatic | undefined {
  const model = scopingModel(sequelize, undefined, name);
  return (model as unknown as { options?: { tenantKey?: unknown } } | undefined)?.options?.tenantKey != null ? model : undefined;
}
