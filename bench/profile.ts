// CPU profile of the library's own code on the create / update / findByPk paths:
//   node --import tsx --cpu-prof --cpu-prof-dir bench/results bench/profile.ts
// then look at the self time of the functions under src/ (bench/profile-summary.ts prints them).
import { DataTypes, Sequelize } from 'sequelize';
import { createTestDatabase } from '../test/helpers/db';
import { lib } from './library';

const { multitenant, withTenant } = lib;

async function main() {
  const db = await createTestDatabase();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: Math.min(db.maxConnections, 4) } });
  multitenant(sequelize, { notice: false });
  const key = () => ({ type: DataTypes.BIGINT, primaryKey: true });
  const Product = sequelize.define(
    'Product',
    { id: key(), store_id: key(), name: DataTypes.STRING, stock: DataTypes.INTEGER },
    { tableName: 'p', timestamps: false, tenantKey: 'store_id' },
  );
  await sequelize.sync();
  const N = Number(process.env.OPS ?? 3000);
  for (let i = 0; i < N; i++) {
    await withTenant((i % 3) + 1, async () => {
      await Product.create({ id: i, name: 'x', stock: 1 });
      await Product.update({ stock: 2 }, { where: { id: i } });
      await Product.findOne({ where: { id: i } });
    });
  }
  await sequelize.close();
  await db.drop();
}
main();
