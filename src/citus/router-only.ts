import type { Sequelize } from 'sequelize';
import { currentFrame } from '../context';
import { type NoticeHandler, notify } from '../notice';

type Connection = { query(sql: string): Promise<unknown> };
const levels = new WeakMap<object, string>();
const installed = new WeakSet<Sequelize>();

/**
 * For test suites on Citus: every statement sent while exactly one tenant is set must be a router query
 * (one shard). Sets `citus.multi_task_query_log_level = 'error'` on the pooled connection before each such
 * statement — so a statement that would fan out to several shards fails with an error — and back to
 * `'off'` for unscoped work (setup, withoutTenant, several tenants). A no-op with a notice on plain
 * PostgreSQL. Call it once, before the suite's queries.
 * @example
 * const sequelize = multitenant(new Sequelize(process.env.CITUS_URL));
 * if (process.env.CITUS_URL) routerOnly(sequelize);
 */
export function routerOnly(sequelize: Sequelize, options: { notice?: NoticeHandler } = {}): void {
  if (installed.has(sequelize)) return;
  installed.add(sequelize);
  let citus: boolean | undefined;
  sequelize.addHook('beforeQuery', async (_options: unknown, query: unknown) => {
    const connection = (query as { connection?: Connection }).connection;
    if (!connection || typeof connection.query !== 'function') return;
    if (citus === undefined) {
      const result = (await connection.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`)) as { rowCount?: number };
      citus = (result.rowCount ?? 0) > 0;
      if (!citus) notify(sequelize, 'routerOnly: no citus extension in this database, nothing to check (plain PostgreSQL)', options.notice);
    }
    if (!citus) return;
    const tenant = currentFrame()?.tenant;
    const wanted = tenant && !tenant.many ? 'error' : 'off';
    if ((levels.get(connection) ?? 'off') === wanted) return;
    await connection.query(`SET citus.multi_task_query_log_level = '${wanted}'`);
    levels.set(connection, wanted);
  });
}
