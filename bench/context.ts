// The tenant context's own cost, side by side on a real PostgreSQL: a one-query request (findByPk) three
// ways, interleaved op by op in one process —
//   hand:      plain Sequelize, the tenant filter written by hand, no context at all;
//   context:   the same hand-written query inside a fresh withTenant (what entering a tenant costs);
//   library:   the library's scoped query inside a fresh withTenant (the whole request);
//   control:   `hand` again on a second plain Sequelize — an A/A pair, so the noise floor is on the table.
// Reports Node CPU µs per operation (process.cpuUsage) per round and the median over rounds of the
// per-round ratios, so the machine's drift between rounds cancels out.
// Run: npm run bench:context  (ROUNDS=40 OPS=200 to change)
import { Sequelize } from 'sequelize';
import { lib } from './library';

const { multitenant, withTenant } = lib;

import { createTestDatabase } from '../test/helpers/db';
import { interleavedCpu, median, medianRatio } from './interleave';
import { define, PRODUCTS, TENANTS } from './workloads';

const ROUNDS = Number(process.env.ROUNDS ?? 40);
const OPS = Number(process.env.OPS ?? 200);

async function main() {
  const db = await createTestDatabase();
  const pool = { max: 1 };
  const plain = new Sequelize(db.url, { logging: false, pool });
  const again = define(new Sequelize(db.url, { logging: false, pool }), false);
  const scoped = new Sequelize(db.url, { logging: false, pool });
  multitenant(scoped, { notice: false });
  const base = define(plain, false);
  const lib = define(scoped, true);
  await plain.sync({ force: true });
  await plain.query(
    `INSERT INTO bench_products (id, store_id, name, stock) SELECT i, s, 'p' || i, 100 FROM generate_series(1, ${PRODUCTS}) i, generate_series(1, ${TENANTS}) s`,
  );
  const tenantOf = (i: number) => (i % TENANTS) + 1;
  const pid = (i: number) => (i % PRODUCTS) + 1;
  const ways = {
    hand: (i: number) => base.Product.findOne({ where: { id: pid(i), store_id: tenantOf(i) } }),
    context: (i: number) => withTenant(tenantOf(i), () => base.Product.findOne({ where: { id: pid(i), store_id: tenantOf(i) } })),
    library: (i: number) => withTenant(tenantOf(i), () => lib.Product.findOne({ where: { id: pid(i) } })),
    control: (i: number) => again.Product.findOne({ where: { id: pid(i), store_id: tenantOf(i) } }),
  };
  const perRound = await interleavedCpu(ways, ROUNDS, OPS);
  const col = (n: keyof typeof ways) => perRound.map((r) => r[n]);
  const ratio = (a: keyof typeof ways, b: keyof typeof ways) => medianRatio(perRound, a, b);
  const result = {
    database: db.kind,
    rounds: ROUNDS,
    opsPerRound: OPS,
    'hand µs/op (median)': Number(median(col('hand')).toFixed(1)),
    'context µs/op (median)': Number(median(col('context')).toFixed(1)),
    'library µs/op (median)': Number(median(col('library')).toFixed(1)),
    'whole request: library ÷ hand': Number(ratio('library', 'hand').toFixed(3)),
    'entering a tenant: context ÷ hand': Number(ratio('context', 'hand').toFixed(3)),
    'scoping itself: library ÷ context': Number(ratio('library', 'context').toFixed(3)),
    'noise floor (A/A): control ÷ hand': Number(ratio('control', 'hand').toFixed(3)),
    // the same hand-written query on a second instance: what an instance that is not the first costs
    'whole request against the control: library ÷ control': Number(ratio('library', 'control').toFixed(3)),
    'entering a tenant against the control: context ÷ control': Number(ratio('context', 'control').toFixed(3)),
  };
  console.table(result);
  console.log(JSON.stringify(result));
  await plain.close();
  await scoped.close();
  await db.drop();
}
main();
