// A Sequelize instance whose connections are an in-process fake: the benchmarks that measure Node's own
// work (bench/node-cpu.ts, bench/process.ts) run Sequelize and the library without network or
// server noise.
import { Sequelize } from 'sequelize';

type Callback = (err: Error | null, result: unknown) => void;
type Row = Record<string, unknown>;

/**
 * The rows PostgreSQL returns for the benchmark's SELECTs (bench/workloads.ts), keyed as pg keys them (a
 * column's name, or its alias): a product by key gives one row, a product's purchases two, three
 * products joined with their purchases six — so that Sequelize builds the instances it builds on
 * PostgreSQL (a fake that answered no rows measured no instance building at all).
 */
function selectRows(sql: string): Row[] {
  const list = /^SELECT (.*?) FROM /.exec(sql)?.[1];
  if (!list) return [];
  const keys = list.split(', ').map((item) => /AS "([^"]+)"$/.exec(item)?.[1] ?? /"([^"]+)"$/.exec(item)?.[1] ?? item);
  const joined = sql.includes(' JOIN ');
  const count = joined ? 6 : sql.includes('FROM "bench_purchases"') ? 2 : 1;
  const value = (key: string, r: number): unknown => {
    if (key === 'id') return String(joined ? 1 + (r >> 1) : r + 1); // pg returns BIGINT as text
    if (key.endsWith('.id')) return String(r + 1);
    if (key === 'name') return `p${r + 1}`;
    if (key.endsWith('store_id') || key.endsWith('product_id')) return '1';
    return 100;
  };
  return Array.from({ length: count }, (_, r) => Object.fromEntries(keys.map((k) => [k, value(k, r)])));
}

/** Answers like pg would: the rows of a SELECT (selectRows), a row for INSERT ... RETURNING, one affected row for UPDATE. */
const fake = {
  query(sql: string, a?: unknown, b?: Callback) {
    const cb = (typeof a === 'function' ? a : b) as Callback;
    const insert = sql.startsWith('INSERT');
    const rows = insert ? [{ id: '1' }] : sql.startsWith('SELECT') ? selectRows(sql) : [];
    queueMicrotask(() => cb(null, { rows, rowCount: insert || sql.startsWith('UPDATE') ? 1 : rows.length, fields: [] }));
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
