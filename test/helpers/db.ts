// Where the tests run: DATABASE_URL; else the PostgreSQL server at 127.0.0.1:5432; else a PostgreSQL
// container (testcontainers, when a Docker daemon answers); else an embedded PostgreSQL (PGlite served
// over the wire protocol by @electric-sql/pglite-socket, one connection). Each test file gets a fresh
// database (or a fresh PGlite) that is dropped at the end. MULTITENANT_TEST_DB=embedded|server forces one.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { openDatabase } from '../../examples/store/database';

export type DatabaseKind = 'DATABASE_URL' | 'server' | 'container' | 'embedded' | 'citus';

/** `npm run test:citus`: the suite runs on CITUS_URL, each test file in a schema of its own, router-only. */
export const onCitus = process.env.MULTITENANT_TEST_DB === 'citus';

/**
 * Tests of behaviours that cannot exist on Citus — a tenant model whose key lacks the tenant column, a
 * row without a tenant, a query that fans out on purpose — are reported as skipped there.
 */
export const pgOnly = <T extends { serial: unknown; skip: unknown }>(test: T): T['serial'] =>
  (onCitus ? test.skip : test.serial) as T['serial'];

export interface TestDatabase {
  readonly kind: DatabaseKind;
  readonly url: string;
  /** How many connections the server takes (1 for PGlite). */
  readonly maxConnections: number;
  drop(): Promise<void>;
}

const LOCAL = 'postgres://postgres@127.0.0.1:5432/postgres';

let decided: DatabaseKind | undefined;
/**
 * Which database this run's tests get, known when tests are registered (so a test that needs a server
 * is registered as skipped on the embedded one, and reported so): forced by MULTITENANT_TEST_DB, else
 * DATABASE_URL, else the server when it answers (probed once per ava run: the answer is kept for the other
 * test files' workers), else a container when a Docker daemon may answer, else the embedded PGlite.
 */
export function databaseKind(): DatabaseKind {
  if (decided) return decided;
  const forced = process.env.MULTITENANT_TEST_DB;
  if (forced === 'citus' || forced === 'embedded' || forced === 'server') decided = forced;
  else if (process.env.DATABASE_URL) decided = 'DATABASE_URL';
  else {
    const memo = join(tmpdir(), `smt-test-db-kind-${process.ppid}`);
    const kept = existsSync(memo) ? (readFileSync(memo, 'utf8') as DatabaseKind) : undefined;
    if (kept) decided = kept;
    else {
      const probe = `const { Client } = require('pg'); const c = new Client({ connectionString: ${JSON.stringify(LOCAL)}, connectionTimeoutMillis: 2000 });
        c.connect().then(() => c.query('select 1')).then(() => process.exit(0), () => process.exit(1));`;
      const server = spawnSync(process.execPath, ['-e', probe], { timeout: 5000, cwd: join(__dirname, '..', '..') }).status === 0;
      const docker = !!process.env.DOCKER_HOST || existsSync('/var/run/docker.sock');
      decided = server ? 'server' : docker ? 'container' : 'embedded';
      writeFileSync(memo, decided);
    }
  }
  return decided;
}

/** The embedded PGlite takes one connection and one session: tests that need a second are skipped there (reported as skipped). */
export const onEmbedded = (): boolean => databaseKind() === 'embedded';

async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function freshDatabaseOn(adminUrl: string, kind: DatabaseKind): Promise<TestDatabase> {
  const name = `smt_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    maxConnections: 10,
    async drop() {
      const c = new Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * The coordinator's public schema, for a test file whose subject Sequelize reads in `public` only
 * (`sync({ alter })` looks tables up in information_schema under 'public' unless the model names a
 * schema). `npm run test:citus` runs one file at a time; drop() removes what the file made there.
 */
async function citusPublic(citusUrl: string): Promise<TestDatabase> {
  const tables = async (c: InstanceType<typeof Client>) =>
    new Set(
      (
        await c.query(
          `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
        )
      ).rows.map((r: { name: string }) => r.name),
    );
  const admin = new Client({ connectionString: citusUrl });
  await admin.connect();
  const before = await tables(admin);
  await admin.end();
  return {
    kind: 'citus',
    url: citusUrl,
    maxConnections: 10,
    async drop() {
      const c = new Client({ connectionString: citusUrl });
      await c.connect();
      for (const name of await tables(c))
        if (!before.has(name)) await c.query(`DROP TABLE IF EXISTS public."${name.replace(/"/g, '""')}" CASCADE`);
      await c.end();
    },
  };
}

/** On a Citus coordinator a new database would need its workers added again: a fresh schema instead. */
async function citusSchema(citusUrl: string): Promise<TestDatabase> {
  const schema = `smt_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: citusUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(citusUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    kind: 'citus',
    url: url.toString(),
    maxConnections: 10,
    async drop() {
      const c = new Client({ connectionString: citusUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function container(): Promise<TestDatabase | undefined> {
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
    await tc.getContainerRuntimeClient();
  } catch {
    return undefined; // no Docker daemon here
  }
  const started = await new tc.GenericContainer('postgres:15-alpine')
    .withEnvironment({ POSTGRES_PASSWORD: 'postgres', POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withExposedPorts(5432)
    .withWaitStrategy(tc.Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  const db = await freshDatabaseOn(
    `postgres://postgres:postgres@${started.getHost()}:${started.getMappedPort(5432)}/postgres`,
    'container',
  );
  return { ...db, drop: async () => void (await started.stop()) };
}

/** The embedded PGlite, started the way the example starts it (one piece of code for both). */
async function embedded(): Promise<TestDatabase> {
  const db = await openDatabase(undefined);
  return { kind: 'embedded', url: db.url, maxConnections: db.maxConnections, drop: db.close };
}

/**
 * Finds a PostgreSQL as described above and makes a fresh database on it. `publicSchema`: on Citus, the
 * coordinator's public schema (see citusPublic) instead of a schema of the file's own.
 */
export async function createTestDatabase(options: { publicSchema?: boolean } = {}): Promise<TestDatabase> {
  const kind = databaseKind();
  let db: TestDatabase | undefined;
  if (kind === 'citus') {
    if (!process.env.CITUS_URL) throw new Error('MULTITENANT_TEST_DB=citus needs CITUS_URL=postgres://... (a Citus coordinator)');
    db = options.publicSchema ? await citusPublic(process.env.CITUS_URL) : await citusSchema(process.env.CITUS_URL);
  } else if (kind === 'embedded') db = await embedded();
  else if (kind === 'DATABASE_URL') db = await freshDatabaseOn(process.env.DATABASE_URL as string, 'DATABASE_URL');
  else if (await answers(LOCAL)) db = await freshDatabaseOn(LOCAL, 'server');
  else if (kind === 'server') throw new Error(`MULTITENANT_TEST_DB=server but ${LOCAL} does not answer`);
  else db = await container();
  if (!db)
    throw new Error(
      `no PostgreSQL server at ${LOCAL} and no container could be started: MULTITENANT_TEST_DB=embedded uses the embedded one`,
    );
  if (!announced) {
    announced = true;
    const u = new URL(db.url);
    const where =
      db.kind === 'embedded'
        ? 'embedded PGlite'
        : `${u.host}${u.pathname}${db.kind === 'citus' ? ` (${u.searchParams.get('options')})` : ''}`;
    process.stderr.write(`[test db] ${db.kind}: ${where}\n`);
  }
  return db;
}
let announced = false;
