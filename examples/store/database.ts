// Where the example's data lives: DATABASE_URL (PostgreSQL or a Citus coordinator), else an embedded
// PostgreSQL — PGlite served over the wire protocol by @electric-sql/pglite-socket — so that `pg` and
// Sequelize talk to it like to any server.
export interface Database {
  url: string;
  /** 'embedded PGlite' or the server's host:port/database. */
  description: string;
  /** How many connections the server accepts (1 for PGlite). */
  maxConnections: number;
  close(): Promise<void>;
}

export async function openDatabase(url: string | undefined): Promise<Database> {
  if (url) {
    const u = new URL(url);
    return { url, description: `${u.host}${u.pathname}`, maxConnections: 10, close: async () => undefined };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1' });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    description: `embedded PGlite (${server.getServerConn()})`,
    maxConnections: 1,
    async close() {
      await server.stop();
      await db.close();
    },
  };
}
