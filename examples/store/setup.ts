// Opens the database, defines the models, creates the schema and seeds two stores whose products
// share ids (1, 2, ...), then starts the Express app.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sequelize } from 'sequelize';
import { withoutTenant, withTenant } from 'sequelize-multitenant';
import { createApp } from './app';
import { type Database, openDatabase } from './database';
import { defineModels, SCHEMA, type Store as StoreRow } from './models';

export interface Example {
  database: Database;
  sequelize: Sequelize;
  /** Every statement sent, bind parameters shown in place. */
  sql: string[];
  baseUrl: string;
  close(): Promise<void>;
}

function inline(statement: string, bind?: unknown[]): string {
  const text = statement.replace(/^Executing \([^)]*\): /, '');
  if (!bind?.length) return text;
  return text.replace(/\$(\d+)/g, (whole, n: string) => {
    const v = bind[Number(n) - 1];
    return v === undefined ? whole : typeof v === 'number' ? String(v) : `'${String(v)}'`;
  });
}

/** `url`: a PostgreSQL URL; undefined → DATABASE_URL, else embedded; '' → embedded. */
export async function startExample(options: { url?: string; port?: number } = {}): Promise<Example> {
  const database = await openDatabase(options.url === undefined ? process.env.DATABASE_URL : options.url || undefined);
  const sql: string[] = [];
  const sequelize = new Sequelize(database.url, {
    logging: ((s: string, o?: { bind?: unknown[] }) => {
      sql.push(inline(s, o?.bind));
    }) as (s: string) => void,
    pool: { max: database.maxConnections },
  });
  const { Store, Country, Product, Purchase } = defineModels(sequelize);
  await sequelize.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await sequelize.query(`CREATE SCHEMA ${SCHEMA}`);
  await sequelize.sync();

  const stores = await withoutTenant(async () => {
    await Country.bulkCreate([
      { code: 'DE', name: 'Germany' },
      { code: 'US', name: 'United States' },
    ]);
    return Store.bulkCreate([
      { slug: 'acme', name: 'Acme Corp.' },
      { slug: 'globex', name: 'Globex Corporation' },
    ]);
  });
  const [acme, globex] = stores as [StoreRow, StoreRow];
  await withTenant(acme, async () => {
    await Product.bulkCreate([
      { id: '1', name: 'Anvil', price: 100, countryCode: 'US' },
      { id: '2', name: 'Rocket skates', price: 250, countryCode: 'US' },
    ]);
    await Purchase.bulkCreate([{ productId: '1', quantity: 2 }]);
  });
  await withTenant(globex, async () => {
    await Product.bulkCreate([
      { id: '1', name: 'Hammock', price: 80, countryCode: 'DE' },
      { id: '2', name: 'Doomsday device', price: 9999 },
      { id: '3', name: 'Volcano lair', price: 500000 },
    ]);
    await Purchase.bulkCreate([
      { productId: '2', quantity: 1 },
      { productId: '3', quantity: 1 },
    ]);
  });
  // The seed gave explicit ids: move the id sequence past them.
  await sequelize.query(`SELECT setval(pg_get_serial_sequence('${SCHEMA}.products', 'id'), 100)`);

  const server: Server = createApp().listen(options.port ?? 0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  sql.length = 0;
  return {
    database,
    sequelize,
    sql,
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await sequelize.close();
      await database.close();
    },
  };
}
