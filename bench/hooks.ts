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
import { interleavedCpu, median, medianRatio } from './interleave';
import { define, PRODUCTS, TENANTS } from './workloads';

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const OPS = Number(process.env.OPS ?? 200);

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
  const perRound = await interleavedCpu(ways, ROUNDS, OPS);
  const ratio = (a: keyof typeof ways, b: keyof typeof ways) => Number(medianRatio(perRound, a, b).toFixed(3));
  const result = {
    database: db.kind,
    rounds: ROUNDS,
    'operation (findByPk + count + update) µs CPU, with hooks (median)': Number(median(perRound.map((r) => r.hooks)).toFixed(1)),
    'with hooks ÷ hooks removed': ratio('hooks', 'no hooks'),
    'noise floor (A/A): control ÷ hooks': ratio('control', 'hooks'),
  };
  console.table(result);
  console.log(JSON.stringify(result));
  for (const m of [hooked, control, bare]) await m.s.close();
  await db.drop();
}
main();
