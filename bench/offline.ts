// A Sequelize instance whose connections are an in-process fake: the benchmarks that measure Node's own
// work (bench/node-cpu.ts, bench/context-cost.ts) run Sequelize and the library without network or
// server noise.
import { Sequelize } from 'sequelize';

type Callback = (err: Error | null, result: unknown) => void;
/** Answers like pg would: a row for INSERT ... RETURNING, one affected row for UPDATE, no rows for SELECT. */
const fake = {
  query(sql: string, a?: unknown, b?: Callback) {
    const cb = (typeof a === 'function' ? a : b) as Callback;
    const insert = sql.startsWith('INSERT');
    queueMicrotask(() => cb(null, { rows: insert ? [{ id: 1 }] : [], rowCount: insert || sql.startsWith('UPDATE') ? 1 : 0, fields: [] }));
  },
};

/** A PostgreSQL Sequelize instance on the fake connection. */
export function offline(): Sequelize {
  const s = new Sequelize('postgres://u@127.0.0.1:1/none', { logging: false });
  const cm = s.connectionManager as unknown as { getConnection(): Promise<unknown>; releaseConnection(): Promise<void> };
  cm.getConnection = async () => fake;
  cm.releaseConnection = async () => undefined;
  return s;
}
