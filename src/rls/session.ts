import type { Sequelize } from 'sequelize';
import { currentFrame } from '../context';
import { InvalidTenantError } from '../errors';
import { sqlValue } from '../scope/scope';
import { addSettingsProvider, type PgConnection, readsOrWritesRows, type WantedSettings } from '../settings';
import { type Tenant, tenantIdOf } from '../tenant';

/** The custom setting holding the current tenant(s) as a PostgreSQL text array literal (`{"7","8"}`). */
export const TENANT_SETTING = 'sequelize_multitenant.tenant';
/** The custom setting that is `on` inside `withoutTenant`. */
export const BYPASS_SETTING = 'sequelize_multitenant.bypass';

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
    if (citus === undefined) {
      const result = (await connection.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)) as { rowCount?: number };
      citus = (result.rowCount ?? 0) > 0;
    }
    const values = currentSettings();
    if (!citus) return { values };
    if (!inTransaction && (values === NONE || !readsOrWritesRows(sql))) return undefined;
    return { values, local: true, before: CITUS_FIRST };
  });
}
