import type { Sequelize } from 'sequelize';
import { installAuditor, type QueryClass } from '../audit/auditor';
import { currentFrame } from '../context';
import { notify } from '../notice';
import { checkOptions } from '../options';
import { addSettingsProvider } from '../settings';
import { type NoticeHandler, stateOf } from '../state';

const installed = new WeakSet<Sequelize>();

/**
 * For test suites on Citus: every statement sent while exactly one tenant is set must be a router query
 * (one shard). Sets `citus.multi_task_query_log_level = 'error'` on the connection before each such
 * statement — so a statement that would fan out to several shards fails with an error — and back to
 * `'off'` for unscoped work (setup, withoutTenant, several tenants). The level a connection holds is
 * tracked across transactions (a ROLLBACK undoes a SET) and statements sharing one transaction's
 * connection each run with their own. A no-op with a notice on plain PostgreSQL. Call it once, before
 * the suite's queries.
 * @example
 * const sequelize = multitenant(new Sequelize(process.env.CITUS_URL));
 * if (process.env.CITUS_URL) routerOnly(sequelize);
 */
export function routerOnly(sequelize: Sequelize, options: { notice?: NoticeHandler } = {}): void {
  checkOptions('routerOnly', options, { notice: 'notice' }, 'nothing was installed');
  if (installed.has(sequelize)) return;
  installed.add(sequelize);
  installAuditor((sequelize as unknown as { dialect: { Query: QueryClass } }).dialect.Query, stateOf);
  let citus: boolean | undefined;
  addSettingsProvider(sequelize, async (connection) => {
    if (citus === undefined) {
      const result = (await connection.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)) as { rowCount?: number };
      citus = (result.rowCount ?? 0) > 0;
      if (!citus)
        notify(sequelize, 'routerOnly: no citus extension in this database, nothing to check (plain PostgreSQL)', options.notice, 'info');
    }
    if (!citus) return undefined;
    const tenant = currentFrame()?.tenant;
    return { values: { 'citus.multi_task_query_log_level': tenant && !tenant.many ? 'error' : 'off' } };
  });
}
