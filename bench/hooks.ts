// What the library's own model hooks cost (#16: beforeFind / beforeCount / beforeBulkUpdate /
// beforeBulkDestroy put the tenant into options.where for the application's hooks): the same scoped
// operations on library instances with those hooks and with them removed — interleaved op by op in one
// process on a real PostgreSQL, plus an A/A pair (two instances with hooks) for the noise floor. Twice:
// with no hook of the application's (the library's hook is then the only one and is not run, #28), and
// with one application beforeFind / beforeCount / beforeBulkUpdate hook on the models (the library's runs
// first). Reports the median over rounds of per-round Node CPU ratios.
// Run: npm run bench:hooks  (ROUNDS=30 OPS=200 to change)
import { Sequelize } from 'sequelize';
import { createTestDatabase } from '../test/helpers/db';
import { interleavedCpu, median, medianRatio } from './interleave';
import { internals, lib } from './library';
import { define, PRODUCTS, TENANTS } from './workloads';

const { multitenant, withTenant } = lib;
const { HOOK_NAME } = internals.hooks;

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const OPS = Number(process.env.OPS ?? 200);

async function main() {
  const db = await createTestDatabase();
  let seen = 0;
  const instance = (appHook: boolean, library: boolean) => {
    const s = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    multitenant(s, { notice: false });
    const m = { s, ...define(s, true) };
    for (const type of ['beforeFind', 'beforeCount', 'beforeBulkUpdate', 'beforeBulkDestroy', 'beforeBulkRestore'] as const) {
      if (!library) for (const model of [m.Product, m.Purchase]) model.removeHook(type, HOOK_NAME);
      if (appHook && type !== 'beforeBulkDestroy' && type !== 'beforeBulkRestore')
        for (const model of [m.Product, m.Purchase])
          model.addHook(type, 'app', (options: { where?: unknown }) => {
            if (options.where) seen++;
          });
    }
    return m;
  };
  const hooked = instance(false, true);
  const control = instance(false, true);
  const bare = instance(false, false);
  const withApp = instance(true, true);
  const appOnly = instance(true, false);
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
  const ways = {
    hooks: op(hooked),
    control: op(control),
    'no hooks': op(bare),
    'app hook': op(withApp),
    'app hook, library hooks removed': op(appOnly),
  };
  const perRound = await interleavedCpu(ways, ROUNDS, OPS);
  const ratio = (a: keyof typeof ways, b: keyof typeof ways) => Number(medianRatio(perRound, a, b).toFixed(3));
  const result = {
    database: db.kind,
    rounds: ROUNDS,
    'operation (findByPk + count + update) µs CPU, with hooks (median)': Number(median(perRound.map((r) => r.hooks)).toFixed(1)),
    'no application hook: with the library hooks ÷ removed': ratio('hooks', 'no hooks'),
    'an application hook: with the library hooks ÷ removed': ratio('app hook', 'app hook, library hooks removed'),
    'application hook runs': seen,
    'noise floor (A/A): control ÷ hooks': ratio('control', 'hooks'),
  };
  console.table(result);
  console.log(JSON.stringify(result));
  for (const m of [hooked, control, bare, withApp, appOnly]) await m.s.close();
  await db.drop();
}
main();
