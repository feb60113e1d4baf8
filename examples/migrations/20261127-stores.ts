// An umzug / sequelize-cli style migration that builds the example's schema the Citus way, and takes it
// back. It runs on plain PostgreSQL too (the Citus steps are no-ops with a notice there). The README's
// "Migrations" section shows this file; test/citus-schema.test.ts runs it on both.
import { DataTypes, type QueryInterface } from 'sequelize';
import { addTenantForeignKey, createDistributedTable, createReferenceTable, undistributeTable } from 'sequelize-multitenant';

export async function up({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  const bigint = { type: DataTypes.BIGINT, allowNull: false };
  await queryInterface.createTable('stores', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    name: DataTypes.STRING,
  });
  await createDistributedTable(queryInterface, 'stores', 'id'); // parents first
  await queryInterface.createTable('countries', { code: { type: DataTypes.STRING(2), primaryKey: true } });
  await createReferenceTable(queryInterface, 'countries');
  await queryInterface.createTable('products', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    store_id: { ...bigint, primaryKey: true }, // PRIMARY KEY (id, store_id): the tenant column in every key
    name: DataTypes.STRING,
  });
  await createDistributedTable(queryInterface, 'products', 'store_id', { colocateWith: 'stores' });
  await queryInterface.createTable('purchases', {
    id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
    store_id: { ...bigint, primaryKey: true },
    product_id: bigint,
  });
  await createDistributedTable(queryInterface, 'purchases', 'store_id', { colocateWith: 'stores' });
  await addTenantForeignKey(queryInterface, 'purchases', {
    tenantColumn: 'store_id',
    columns: ['product_id'],
    references: { table: 'products', columns: ['id'] },
    onDelete: 'CASCADE',
  });
}

export async function down({ context: queryInterface }: { context: QueryInterface }): Promise<void> {
  // back to local tables first (purchases and products go together: a foreign key joins them), then drop
  await undistributeTable(queryInterface, 'purchases', { cascadeViaForeignKeys: true });
  for (const table of ['purchases', 'products', 'countries', 'stores']) await queryInterface.dropTable(table);
}
