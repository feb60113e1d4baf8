// routerOnly on a real Citus cluster: the level a connection holds follows every statement — also
// across a ROLLBACK that undid a SET, after a failed statement in a transaction, and for statements
// sharing one transaction's connection. Citus-only: reported as skipped without CITUS_URL.
import anyTest, { type TestFn } from 'ava';
import { DataTypes, QueryTypes, Sequelize } from 'sequelize';
import { multitenant, routerOnly, withoutTenant, withTenant } from '../src/index';
import { createTestDatabase, onCitus, type TestDatabase } from './helpers/db';

interface Ctx {
  db: TestDatabase;
  sequelize: Sequelize;
}
const test = anyTest as TestFn<Ctx>;
const citusOnly = onCitus ? test.serial : test.skip;

if (onCitus) {
  test.before(async (t) => {
    const db = await createTestDatabase();
    // one connection: every statement of the file shares it, as statements of one transaction do
    const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 1 } });
    multitenant(sequelize, { notice: false });
    routerOnly(sequelize);
    const Store = sequelize.define(
      'Store',
      { id: { type: DataTypes.BIGINT, primaryKey: true } },
      { tableName: 'stores', tenantKey: 'id', timestamps: false },
    );
    const Product = sequelize.define(
      'Product',
      { id: { type: DataTypes.BIGINT, primaryKey: true }, store_id: { type: DataTypes.BIGINT, primaryKey: true } },
      { tableName: 'products', tenantKey: 'store_id', timestamps: false },
    );
    Product.belongsTo(Store, { foreignKey: 'store_id' });
    await sequelize.sync();
    await withoutTenant(async () => {
      await Store.bulkCreate([{ id: 1 }, { id: 2 }, { id: 3 }]);
      await Product.bulkCreate([1, 2, 3].map((s) => ({ id: 1, store_id: s })));
    });
    t.context = { db, sequelize };
  });
  test.after.always(async (t) => {
    await t.context?.sequelize?.close();
    await t.context?.db?.drop();
  });
}

const level = (s: Sequelize, transaction?: unknown) =>
  s
    .query('SHOW citus.multi_task_query_log_level', { type: QueryTypes.SELECT, transaction: transaction as never, plain: true })
    .then((r) => Object.values(r as Record<string, string>)[0]);
/** A statement that fans out to every shard. */
const fanOut = (s: Sequelize, transaction?: unknown) =>
  s.query('SELECT count(*) FROM products', { type: QueryTypes.SELECT, transaction: transaction as never });

citusOnly('a SET undone by ROLLBACK is sent again: a fan-out under one tenant still fails afterwards', async (t) => {
  const { sequelize } = t.context;
  t.is(await withoutTenant(() => level(sequelize)), 'off');
  const tx = await sequelize.transaction(); // begun without a tenant
  t.is(await withTenant(1, () => level(sequelize, tx)), 'error'); // SET inside the transaction
  await tx.rollback(); // ... undone
  await t.throwsAsync(() => withTenant(1, () => fanOut(sequelize)), { message: /multi-task query about to be executed/ });
  t.is(await withTenant(1, () => level(sequelize)), 'error');
});

citusOnly('a failed statement inside a transaction: ROLLBACK is still sent and the connection stays usable', async (t) => {
  const { sequelize } = t.context;
  const tx = await sequelize.transaction();
  await t.throwsAsync(() => withTenant(1, () => fanOut(sequelize, tx))); // refused: the transaction is aborted
  // a statement of another mode in the aborted transaction fails as PostgreSQL says, not on our SET
  await t.throwsAsync(() => withoutTenant(() => fanOut(sequelize, tx)), { message: /current transaction is aborted/ });
  await tx.rollback();
  t.is(await withoutTenant(() => fanOut(sequelize).then((r) => r.length)), 1);
  t.is(await withoutTenant(() => level(sequelize)), 'off');
  t.is(await withTenant(2, () => level(sequelize)), 'error');
});

citusOnly('statements sharing one transaction connection each run with their own level', async (t) => {
  const { sequelize } = t.context;
  await sequelize.transaction(async (tx) => {
    const shapes = Array.from({ length: 12 }, (_, i) => i % 3);
    const seen = await Promise.all(
      shapes.map((k) =>
        k === 0
          ? withTenant(1, () => level(sequelize, tx))
          : k === 1
            ? withoutTenant(() => level(sequelize, tx))
            : withTenant([1, 2], () => level(sequelize, tx)),
      ),
    );
    t.deepEqual(
      seen,
      shapes.map((k) => (k === 0 ? 'error' : 'off')),
    );
  });
});
