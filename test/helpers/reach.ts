// An oracle for "does this statement reach tenant 2?": run it twice in rolled-back transactions, on the
// data and on the data without tenant 2's rows (foreign-key triggers off); it reaches tenant 2 when its
// result or tenant 1's rows afterwards differ, or when it changed tenant 2's rows. PostgreSQL only.
import type { TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { multitenant } from '../../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './db';

export const TABLES = ['stores', 'products', 'purchases'] as const;

/** One statement to run, with what it needs around it in its transaction. */
export interface Statement {
  sql: string;
  /** Run before the statement (PREPARE ...). */
  setup?: string;
  /** Run after it: what it made (a temporary table) shows in its result. */
  probe?: string;
}

/**
 * A database with two tenants sharing product ids 1 and 2, product 3 tenant 2's only, prices that make
 * orderings differ, and a Sequelize (one connection) with the plugin and the models.
 */
export async function createReachDatabase(): Promise<{ db: TestDatabase; sequelize: Sequelize }> {
  const db = await createTestDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
  multitenant(sequelize, { notice: false });
  const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
  sequelize.define('Store', { id: key() }, { tableName: 'stores', tenantKey: 'id', timestamps: false });
  sequelize.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.STRING, price: DataTypes.INTEGER },
    { tableName: 'products', tenantKey: 'store_id', timestamps: false },
  );
  sequelize.define(
    'Purchase',
    { id: key(), store_id: key(), product_id: DataTypes.BIGINT },
    { tableName: 'purchases', tenantKey: 'store_id', timestamps: false },
  );
  sequelize.define('Category', { id: key(), name: DataTypes.STRING }, { tableName: 'categories', timestamps: false });
  await sequelize.sync();
  // tenants 1 and 2 share product ids 1 and 2; product 3 is tenant 2's only; prices make orderings differ
  await sequelize.query(`INSERT INTO stores VALUES (1), (2);
    INSERT INTO products VALUES (1, 1, 'a-1', 10), (2, 1, 'b-1', 20), (1, 2, 'a-2', 50), (2, 2, 'b-2', 5), (3, 2, 'c-2', 1);
    INSERT INTO purchases VALUES (1, 1, 1), (1, 2, 1), (2, 2, 3);
    INSERT INTO categories VALUES (1, 'fruit')`);
  return { db, sequelize };
}

/** Runs `c` in a transaction that is rolled back; with `withoutTenant2`, after deleting tenant 2's rows. */
export async function runOnce(s: Sequelize, c: Statement, withoutTenant2: boolean): Promise<string> {
  const tx = await s.transaction();
  try {
    if (withoutTenant2) {
      await s.query('SET LOCAL session_replication_role = replica', { transaction: tx }); // no foreign-key triggers
      for (const table of TABLES)
        await s.query(`DELETE FROM ${table} WHERE ${table === 'stores' ? 'id' : 'store_id'} = 2`, { transaction: tx });
    }
    if (c.setup) await s.query(c.setup, { transaction: tx });
    let result: unknown;
    await s.query('SAVEPOINT statement', { transaction: tx });
    try {
      result = await s.query(c.sql, { transaction: tx, type: QueryTypes.SELECT });
      if (c.probe) result = [result, await s.query(c.probe, { transaction: tx, type: QueryTypes.SELECT })];
    } catch (err) {
      result = `error: ${(err as Error).message}`;
      await s.query('ROLLBACK TO SAVEPOINT statement', { transaction: tx });
    }
    // tenant 1's rows afterwards (tenant 2's rows: compared with their start in `reaches`)
    const tables: Record<string, unknown> = {};
    for (const table of TABLES) {
      const [present] = await s.query(`SELECT to_regclass('${table}') IS NOT NULL AS p`, { transaction: tx, type: QueryTypes.SELECT });
      if (!(present as { p: boolean }).p) {
        tables[table] = 'dropped'; // a DROP TABLE: every tenant's rows gone
        continue;
      }
      tables[table] = await s.query(`SELECT * FROM ${table} ORDER BY ${table === 'stores' ? '1' : '1, 2'}`, {
        transaction: tx,
        type: QueryTypes.SELECT,
      });
    }
    return JSON.stringify({ result, tables });
  } finally {
    await tx.rollback();
    if (c.setup?.startsWith('PREPARE')) await s.query(`DEALLOCATE ALL`);
  }
}

/** Does running `c` depend on, or change, tenant 2's rows? */
export async function reaches(s: Sequelize, c: Statement): Promise<boolean> {
  const all = JSON.parse(await runOnce(s, c, false)) as {
    result: unknown;
    tables: Record<string, Array<Record<string, unknown>> | string>;
  };
  const one = JSON.parse(await runOnce(s, c, true)) as typeof all;
  // a dropped table ('dropped') compares as itself: tenant 2's rows are gone with it
  const own = (rows: Array<Record<string, unknown>> | string, table: string) =>
    typeof rows === 'string' ? rows : rows.filter((r) => String(table === 'stores' ? r.id : r.store_id) !== '2');
  const other = (rows: Array<Record<string, unknown>> | string, table: string) =>
    typeof rows === 'string' ? rows : rows.filter((r) => String(table === 'stores' ? r.id : r.store_id) === '2');
  const start = JSON.parse(await runOnce(s, { sql: 'SELECT 1' }, false)) as typeof all;
  if (JSON.stringify(all.result) !== JSON.stringify(one.result)) return true;
  for (const table of TABLES) {
    if (JSON.stringify(own(all.tables[table] ?? [], table)) !== JSON.stringify(own(one.tables[table] ?? [], table))) return true;
    if (JSON.stringify(other(all.tables[table] ?? [], table)) !== JSON.stringify(other(start.tables[table] ?? [], table))) return true;
  }
  return false;
}

/** The database above for a test file's tests (none on Citus, where the oracle cannot run), dropped after them. */
export function reachDatabaseHooks(test: TestFn<{ db: TestDatabase; sequelize: Sequelize }>): void {
  test.before(async (t) => {
    if (onCitus) return;
    t.context = await createReachDatabase();
  });
  test.after.always(async (t) => {
    await t.context?.sequelize?.close();
    await t.context?.db?.drop();
  });
}
