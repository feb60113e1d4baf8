// The auditor's cost per statement: parse + analysis (first time a SQL text is seen) and the cached
// path (every later time: a map lookup and the per-call check of the tenant and bind values).
// Run: npm run bench:audit  (no database needed)
import { performance } from 'node:perf_hooks';
import { DataTypes, Sequelize } from 'sequelize';
import { internals, lib } from './library';

const { analysisOf } = internals.auditor;
const { firstUnconstrained } = internals.evaluate;
const { multitenant } = lib;
const { normalizeTenant } = internals.tenant;

const sequelize = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
multitenant(sequelize, { notice: false });
const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
sequelize.define(
  'Product',
  { id: key(), store_id: key(), name: DataTypes.STRING },
  { tableName: 'products', tenantKey: 'store_id', timestamps: false },
);
sequelize.define(
  'Purchase',
  { id: key(), store_id: key(), product_id: DataTypes.BIGINT },
  { tableName: 'purchases', tenantKey: 'store_id', timestamps: false },
);

// Statements as Sequelize sends them (findByPk, an include, an update, an insert, a count).
const statements = [
  'SELECT "id", "store_id", "name" FROM "products" AS "Product" WHERE ("Product"."id" = 1 AND "Product"."store_id" = 1);',
  'SELECT "Product"."id", "Product"."store_id", "Purchases"."id" AS "Purchases.id" FROM "products" AS "Product" LEFT OUTER JOIN "purchases" AS "Purchases" ON "Product"."id" = "Purchases"."product_id" AND "Purchases"."store_id" = 1 AND "Product"."store_id" = "Purchases"."store_id" WHERE "Product"."store_id" = 1;',
  'UPDATE "products" SET "name"=$1 WHERE ("id" = $2 AND "store_id" = $3)',
  'INSERT INTO "purchases" ("id","store_id","product_id") VALUES (DEFAULT,$1,$2) RETURNING "id","store_id","product_id";',
  'SELECT count(*) AS "count" FROM "purchases" AS "Purchase" WHERE "Purchase"."store_id" = 1;',
];
const bind = ['x', 1, 1];
const tenant = normalizeTenant(1, {});

async function main() {
  await analysisOf(sequelize, 'SELECT 1'); // load the WASM parser once
  const rounds = Number(process.env.ROUNDS ?? 2000);
  // Uncached: a new SQL text each time (a comment makes it unique), as for a statement seen once.
  // 20 blocks of each, interleaved; the median block is reported (the machine is shared and noisy)
  const blocks = 20;
  const per = Math.max(1, Math.floor(rounds / blocks));
  const uncachedBlocks: number[] = [];
  const cachedBlocks: number[] = [];
  let unique = 0;
  for (let b = 0; b < blocks; b++) {
    let t0 = performance.now();
    for (let i = 0; i < per; i++) {
      const sql = `${statements[unique % statements.length]} /* ${unique++} */`;
      const a = await analysisOf(sequelize, sql);
      if (a.kind === 'graph') firstUnconstrained(a.graph, tenant, bind);
    }
    uncachedBlocks.push(((performance.now() - t0) * 1000) / per);
    t0 = performance.now();
    for (let i = 0; i < per * 10; i++) {
      const a = await analysisOf(sequelize, statements[i % statements.length] as string);
      if (a.kind === 'graph') firstUnconstrained(a.graph, tenant, bind);
    }
    cachedBlocks.push(((performance.now() - t0) * 1000) / (per * 10));
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const uncached = median(uncachedBlocks);
  const cached = median(cachedBlocks);
  const result = { uncachedMicrosPerStatement: Number(uncached.toFixed(1)), cachedMicrosPerStatement: Number(cached.toFixed(2)), rounds };
  console.log(
    `audit cost per statement (median of ${blocks} blocks): uncached ${result.uncachedMicrosPerStatement} µs, cached ${result.cachedMicrosPerStatement} µs (${rounds} / ${rounds * 10} statements)`,
  );
  console.log(JSON.stringify(result));
}
main();
