// What the library's own model hooks cost (#16: beforeFind / beforeCount / beforeBulkUpdate /
// beforeBulkDestroy put the tenant into options.where for the application's hooks): the same scoped
// operations on two library instances, one with those hooks, one with them removed — interleaved op by
// op in one process on a real PostgreSQL, plus an A/A pair (two instances with hooks) for the noise
// floor. Reports the median over rounds of per-round Node CPU ratios.
// Run: npm run bench:hooks  (ROUNDS=30 OPS=200 to change)
import { Sequelize } from 'sequelize';
import { multitenant, withTenant } from '../src/index';
import { HOOK_NAME } from '../src/scope/hooks';
import { createTestDatabase } from '../test/helpers/db';
import { define, PRODUCTS, TENANTS } from './workloads';

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const OPS = Number(process.env.OPS ?? 200);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main() {
  const db = await createTestDatabase();
  const instance = () => {
    const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    multitenant(s, { notice: false });
    return { s, ...define(s, true) };
  };
  const hooked = instance();
  const control = instance();
  const bare = instance();
  for (const type of ['beforeFind', 'beforeCount', 'beforeBulkUpdate', 'beforeBulkDestroy', 'beforeBulkRestore'] as const) {
    bare.Product.removeHook(type, HOOK_NAME);
    bare.Purchase.removeHook(type, HOOK_NAME);
  }
  await hooked.s.sync({ force: true });
  await hooked.s.query(
    `INSERT INTO bench_products (id, store_id, name, stock) SELECT i, s, 'p' || i, 100 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s`,
  );
  const tenantOf = (i: number) => (i % TENANTS) + 1;
  const pid = (i: number) => (i % PRODUCTS) + 1;
  const op = (m: ReturnType<typeof instance>) => async (i: number) =>
    withTenant(tenantOf(i), async () => {
      await m.Product.findByPk(pid(i));
      await m.Product.count({ where: { stock: 100 } });
      await m.Product.update({ name: `p${pid(i)}` }, { where: { id: pid(i) } });
    });
  const ways = { hooks: op(hooked), control: op(control), 'no hooks': op(bare) };
  const names = Object.keys(ways) as Array<keyof typeof ways>;
  const perRound: Array<Record<string, number>> = [];
  for (let round = -2; round < ROUNDS; round++) {
    const cpu: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    for (let i = 0; i < OPS; i++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(i + j) % names.length] as keyof typeof ways;
        const c0 = process.cpuUsage();
        await ways[name](i);
        const c = process.cpuUsage(c0);
        cpu[name] = (cpu[name] as number) + c.user + c.system;
      }
    }
    if (round >= 0) perRound.push(Object.fromEntries(names.map((n) => [n, (cpu[n] as number) / OPS])));
  }
  const ratio = (a: string, b: string) => Number(median(perRound.map((r) => (r[a] as number) / (r[b] as number))).toFixed(3));
  const result = {
    database: db.kind,
    rounds: ROUNDS,
    'operation (findByPk + count + update) µs CPU, with hooks (median)': Number(median(perRound.map((r) => r.hooks as number)).toFixed(1)),
    'with hooks ÷ hooks removed': ratio('hooks', 'no hooks'),
    'noise floor (A/A): control ÷ hooks': ratio('control', 'hooks'),
  };
  console.table(result);
  console.log(JSON.stringify(result));
  for (const m of [hooked, control, bare]) await m.s.close();
  await db.drop();
}
main();
