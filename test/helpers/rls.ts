// A database for row-level security tests: owned by a fresh role that is neither a superuser nor
// BYPASSRLS (those skip every policy), so that the policies the library makes are enforced. On the
// server: a fresh database owned by the role, connected to as the role. On Citus: a fresh schema owned by
// the role (roles reach the workers). On the embedded PGlite (one session, always the superuser): every
// connection starts with SET ROLE.
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataTypes, type Options, QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { createTestDatabase, type TestDatabase } from './db';

/**
 * Row-level security is the database's line against SQL that reaches it unscoped: raw statements the
 * auditor, when on, refuses before they are sent. The row-level security tests send exactly those, so
 * their instances keep the auditor off explicitly (also in CI's run with SEQUELIZE_MULTITENANT_AUDIT=throw,
 * whose census names these files); `rls: true` with the auditor on is tested in install-matrix,
 * canonical-tenants and the doctor's tests.
 */
export const reachesTheDatabase = { audit: 'off' } as const;

export interface RlsDatabase {
  readonly kind: TestDatabase['kind'];
  /** Connects as the owner role. */
  readonly url: string;
  /** Connects as the superuser that made it (setup checks only). */
  readonly adminUrl: string;
  readonly role: string;
  readonly maxConnections: number;
  /** Sequelize options every connection of the owner role needs (PGlite: SET ROLE on connect). */
  connectOptions(): Partial<Options>;
  drop(): Promise<void>;
}

async function admin<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createRlsDatabase(): Promise<RlsDatabase> {
  const db = await createTestDatabase();
  const role = `smt_rls_${process.pid}_${randomBytes(3).toString('hex')}`;
  const url = new URL(db.url);
  await admin(db.url, async (c) => {
    await c.query(`CREATE ROLE ${role} ${db.kind === 'embedded' ? '' : 'LOGIN'} NOSUPERUSER NOBYPASSRLS`);
    if (db.kind === 'citus') {
      const schema = (url.searchParams.get('options') ?? '').replace('-c search_path=', '');
      await c.query(`ALTER SCHEMA ${schema} OWNER TO ${role}`);
    } else if (db.kind === 'embedded') {
      await c.query(`GRANT ALL ON SCHEMA public TO ${role}`);
    } else {
      await c.query(`ALTER DATABASE "${url.pathname.slice(1)}" OWNER TO ${role}`);
    }
  });
  const embedded = db.kind === 'embedded';
  const asRole = new URL(db.url);
  if (!embedded) asRole.username = role;
  return {
    kind: db.kind,
    url: asRole.toString(),
    adminUrl: db.url,
    role,
    maxConnections: db.maxConnections,
    connectOptions: () =>
      embedded
        ? {
            hooks: {
              afterConnect: async (connection: unknown) => {
                await (connection as Client).query(`SET ROLE ${role}`);
              },
            },
          }
        : {},
    async drop() {
      await db.drop();
      if (!embedded) {
        await admin(process.env.MULTITENANT_TEST_DB === 'citus' ? (process.env.CITUS_URL as string) : adminOf(db.url), async (c) => {
          await c.query(`DROP ROLE IF EXISTS ${role}`);
        });
      }
    },
  };
}

/** The maintenance database of the server `url` is on (a dropped database cannot be connected to). */
function adminOf(url: string): string {
  const u = new URL(url);
  u.pathname = '/postgres';
  return u.toString();
}

/** The stores and products of the row-level security tests (two tenants or more share product keys). */
export function defineStoreModels(sequelize: Sequelize) {
  const Store = sequelize.define(
    'Store',
    { id: { type: DataTypes.BIGINT, primaryKey: true }, name: DataTypes.STRING },
    { tableName: 'stores', tenantKey: 'id', timestamps: false },
  );
  const Product = sequelize.define(
    'Product',
    {
      store_id: { type: DataTypes.BIGINT, primaryKey: true },
      id: { type: DataTypes.BIGINT, primaryKey: true },
      name: DataTypes.STRING,
    },
    { tableName: 'products', tenantKey: 'store_id', timestamps: false },
  );
  Product.belongsTo(Store, { foreignKey: 'store_id' });
  Store.hasMany(Product, { foreignKey: 'store_id' });
  return { Store, Product };
}

/** The stores whose products a raw SELECT sees (through the policies), sorted. */
export async function storesSeen(s: Sequelize, transaction?: Transaction): Promise<number[]> {
  const rows = (await s.query('SELECT store_id FROM products', { type: QueryTypes.SELECT, transaction })) as Array<{ store_id: string }>;
  return [...new Set(rows.map((r) => Number(r.store_id)))].sort();
}

/**
 * `base` (a database's connect options) plus a watch on every message sent over each driver connection —
 * the statements Sequelize sends and the settings the library sends on the connection itself. `onMessage`
 * gets each message's text.
 */
export function watchingWire(base: Partial<Options>, onMessage: (text: string) => void): Partial<Options> {
  const afterConnect = base.hooks?.afterConnect as ((connection: unknown, config: unknown) => Promise<void>) | undefined;
  return {
    ...base,
    hooks: {
      ...base.hooks,
      afterConnect: async (connection: unknown, config: unknown) => {
        await afterConnect?.(connection, config);
        const client = connection as { query: (...args: unknown[]) => unknown };
        const query = client.query;
        client.query = function watched(this: unknown, ...args: unknown[]) {
          const first = args[0];
          onMessage(typeof first === 'string' ? first : String((first as { text?: unknown })?.text ?? ''));
          return query.apply(this, args);
        };
      },
    } as Options['hooks'],
  };
}
