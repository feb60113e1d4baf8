import type { Sequelize } from 'sequelize';
import type { AnyModelStatic } from '../models';
import { tenantMeta } from '../models';
import type { SqlOptions, TableName } from '../schema/sql';
import { type StaticMethod, wrapStatic } from '../statics';
import { enableRowLevelSecurity, warnIfRoleBypasses } from './policy';
import { installRlsSession } from './session';

const patched = new WeakSet<object>();
const sessions = new WeakSet<Sequelize>();

/**
 * `rls: true` on one Sequelize instance: the tenant settings on every statement it sends (installed
 * once; it follows the option while the instance lives), and the policies after each tenant model's sync.
 */
export function installRls(
  sequelize: Sequelize,
  Model: { sync(this: AnyModelStatic, options?: Record<string, unknown>): Promise<unknown> },
  isOn: (s: Sequelize) => boolean,
): void {
  if (!sessions.has(sequelize)) {
    sessions.add(sequelize);
    installRlsSession(sequelize, () => isOn(sequelize));
  }
  if (patched.has(Model)) return;
  patched.add(Model);
  // Outside the schema layer's own wrapper: the table exists and is distributed (Citus) when its policy is made.
  wrapStatic(Model, 'sync', (original) => {
    const sync = original as unknown as (this: AnyModelStatic, options?: Record<string, unknown>) => Promise<unknown>;
    return async function rlsSync(this: AnyModelStatic, options?: Record<string, unknown>) {
      const result = await sync.call(this, options);
      const owner = (this as unknown as { sequelize?: Sequelize }).sequelize;
      const meta = tenantMeta(this);
      if (owner && meta && isOn(owner)) {
        const sqlOptions = (options ?? {}) as SqlOptions;
        await warnIfRoleBypasses(owner, sqlOptions);
        await enableRowLevelSecurity(owner, this.getTableName() as TableName, {
          transaction: sqlOptions.transaction ?? undefined,
          logging: sqlOptions.logging,
          column: meta.column,
        });
      }
      return result;
    } as unknown as StaticMethod;
  });
}
