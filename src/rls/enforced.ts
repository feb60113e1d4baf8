// Under `rls: true`, row-level security is never silently off. The policies are made by the sync paths
// the library sees; a tenant table that has none (created by plain Sequelize, by a migration without
// enableRowLevelSecurity, by a sync that ran before the plugin was installed) would show every tenant's
// rows to raw SQL — directly, through a view, through a function. So while a tenant table of the
// instance exists without ENABLE, FORCE, the library's policy and its TRUNCATE trigger (TRUNCATE is not
// subject to policies), every statement about rows (not DDL, settings, transaction control) is refused
// with a MultitenantError before it is sent; outside withoutTenant (which sees every row anyway) and
// outside the library's own schema work (a sync, its catalog reads). The tables are looked at once — at
// the first such statement, again when models are added — and a table proven once is not looked at again
// on that connection, until the instance sends a statement that may make, drop, rename, move or change a
// table, or change which table a name reaches (`mayMakeTables`): then every connection proves its tables
// again at its next statement about rows. A tenant model whose table does not exist yet is looked at again
// when a statement names it, or after such a statement. DDL sent by another process is not seen.
import type { Sequelize } from 'sequelize';
import { currentFrame, inSchemaWork } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { metaOf, models } from '../schema/graph';
import { bare, qualified, type TableName, tableKey } from '../schema/sql';
import { afterStatement, literal, type PgConnection } from '../settings';
import { namesIn, shapeOf } from '../statements';
import { tenantIdOf } from '../tenant';
import { POLICY_NAME, TRUNCATE_TRIGGER } from './names';
import { truncateTriggerInPlace } from './policy';

/** Statements that are not about rows: the schema, settings, transaction control (TRUNCATE is refused apart). */
const NOT_ROWS = new Set([
  'CREATE',
  'ALTER',
  'DROP',
  'COMMENT',
  'GRANT',
  'REVOKE',
  'SECURITY',
  'SET',
  'RESET',
  'SHOW',
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
  'ANALYZE',
  'VACUUM',
  'REINDEX',
  'CLUSTER',
  'DISCARD',
  'LISTEN',
  'NOTIFY',
  'UNLISTEN',
  'DEALLOCATE',
  'TRUNCATE',
]);

interface Pending {
  model: AnyModelStatic;
  table: TableName;
  key: string;
  name: string;
}

/**
 * What one connection has proven: the tenant tables its unqualified names reach hold their policy (a
 * session's temporary table of a tenant table's name would be found first there, and only there).
 */
interface ConnectionProof {
  /** The instance's epoch it was proven at: a statement that may make or rename a table starts a new one. */
  epoch: number;
  proven: Set<string>;
  /** What remains to prove, for the model count it was computed at. */
  pending?: { count: number; size: number; list: Pending[] };
}

interface InstanceState {
  /**
   * Bumped by every statement that may make, drop, rename, move or change a table (or change which table
   * a name reaches), before it is sent, after it ended and after the transaction it ran in ended: each
   * connection proves again.
   */
  epoch: number;
  proofs: WeakMap<object, ConnectionProof>;
  /** Tenant tables that did not exist when last looked at (tableKey → the epoch they were looked at in). */
  missing: Map<string, number>;
  /** Connections that sent a statement that may make tables: their EXECUTE, FETCH and MOVE may run one. */
  deferred: WeakSet<object>;
}
const states = new WeakMap<Sequelize, InstanceState>();

function stateFor(sequelize: Sequelize): InstanceState {
  let state = states.get(sequelize);
  if (!state) {
    state = { epoch: 0, proofs: new WeakMap(), missing: new Map(), deferred: new WeakSet() };
    states.set(sequelize, state);
  }
  return state;
}

/** The tenant tables not found in the current epoch (those of an earlier one are looked at again). */
function missingNow(state: InstanceState): Map<string, number> {
  for (const [key, epoch] of state.missing) if (epoch !== state.epoch) state.missing.delete(key);
  return state.missing;
}

function proofOf(state: InstanceState, connection: object): ConnectionProof {
  let proof = state.proofs.get(connection);
  if (!proof || proof.epoch !== state.epoch) {
    proof = { epoch: state.epoch, proven: new Set() };
    state.proofs.set(connection, proof);
  }
  return proof;
}

function pendingOf(sequelize: Sequelize, proof: ConnectionProof): Pending[] {
  const all = models(sequelize);
  const cached = proof.pending;
  if (cached && cached.count === all.length && cached.size === proof.proven.size) return cached.list;
  const list: Pending[] = [];
  for (const model of all) {
    if (!metaOf(model)) continue;
    const table = model.getTableName() as TableName;
    const key = tableKey(table);
    if (!proof.proven.has(key)) list.push({ model, table, key, name: bare(table) });
  }
  proof.pending = { count: all.length, size: proof.proven.size, list };
  return list;
}

/**
 * Words that make a statement one that may make, drop, rename, move or change a table, or change which
 * table an unqualified name reaches, wherever they stand (an EXPLAIN before them, an earlier statement of
 * the message, a function body): DDL and privileges (a schema's USAGE decides whether the search path
 * reaches it), `set_config` (the search path), and the functions that run a query given as text (whose
 * SELECT may call set_config).
 */
const MAKING_WORDS = [
  'create',
  'alter',
  'drop',
  'import',
  'grant',
  'revoke',
  'set_config',
  // UPDATE pg_settings is SET by another name (search_path among them)
  'pg_settings',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'ts_stat',
  'ts_rewrite',
];
/** Settings that decide which table a name reaches (`SET SCHEMA` is `SET search_path`; the role decides `$user` and privileges). */
const PATH_SETTINGS = new Set(['search_path', 'schema', 'role', 'authorization', 'all']);
/** Statements that run code the message does not show, or a query whose text was sent before (PREPARE, DECLARE). */
const RUNS_CODE = new Set(['DO', 'CALL']);
const RUNS_EARLIER = new Set(['EXECUTE', 'FETCH', 'MOVE']);
/** Statements whose INTO is not SELECT ... INTO (which makes a table). */
const INSERTS = new Set(['INSERT', 'MERGE']);
/**
 * What may start any of the above, looked for in the raw text (strings and comments included) before
 * reading the message: most statements about rows have none of these words. A letter or an underscore
 * before a word makes it part of a longer name; a digit does not (PostgreSQL 14 and earlier read `1INTO`
 * as `1 INTO`).
 */
const CANDIDATE =
  /(?<![A-Za-z_$\u0080-\uffff])(?:CREATE|ALTER|DROP|IMPORT|GRANT|REVOKE|INTO|DO|CALL|SET|RESET|DISCARD|EXECUTE|FETCH|MOVE)(?![A-Za-z0-9_$\u0080-\uffff])|set_config|pg_settings|_to_xml|ts_stat|ts_rewrite|U&/i;

/**
 * Whether a message may make, drop, rename, move or change a table (or change which table a name reaches).
 * Read as PostgreSQL reads it (`namesIn`: words outside string literals and comments, in every statement
 * and function body, quoted identifiers as written): a value that holds one of the words (`'Drop
 * shipping'`, which Sequelize writes into the statements it builds) costs nothing. A message that cannot be
 * read to its end, or that holds a Unicode-escaped name, may.
 */
function mayMakeTables(sql: string, deferred: boolean): boolean {
  if (!CANDIDATE.test(sql)) return false; // the common case, without reading the message
  const shape = shapeOf(sql);
  const names = namesIn(sql);
  if (!shape.readable || !names) return true;
  if (MAKING_WORDS.some((word) => names.has(word))) return true;
  return shape.heads.some((head, i) => {
    if (RUNS_CODE.has(head) || (deferred && RUNS_EARLIER.has(head))) return true;
    const statement = namesIn(shape.statements[i] as string);
    if (!statement) return true;
    // SELECT ... INTO, also after EXPLAIN, in PREPARE, inside parentheses (`1e5INTO`: PostgreSQL 14 and earlier)
    if (!INSERTS.has(head) && [...statement].some((name) => name === 'into' || /^e\d+into$/.test(name))) return true;
    if (head === 'DISCARD') return true;
    // setting names are read in any case, quoted or not
    return (head === 'SET' || head === 'RESET') && [...statement].some((name) => PATH_SETTINGS.has(name.toLowerCase()));
  });
}

/**
 * Refuses a statement about rows while a tenant table exists without ENABLE + FORCE ROW LEVEL SECURITY,
 * the library's policy and its TRUNCATE trigger (enabled, calling the library's function).
 */
export async function assertPoliciesInPlace(sequelize: Sequelize, sql: string, connection: PgConnection): Promise<void> {
  const frame = currentFrame();
  const state = stateFor(sequelize);
  const key = connection as unknown as object;
  // a table made, dropped or changed now may take a tenant table's place for unqualified names, or lack
  // its policy: every connection proves again from the next statement on — counted from before it is sent,
  // from when it has ended, and from when its transaction has ended (other sessions see it only then).
  // This statement is checked as things stand (what it makes does not exist yet), under the proof taken
  // before the epoch moved; so is a missing table it looks at (looked at again after it).
  const makes = mayMakeTables(sql, state.deferred.has(key));
  const proof = proofOf(state, key);
  if (makes) {
    state.epoch++;
    state.deferred.add(key);
    afterStatement(connection, () => {
      state.epoch++;
    });
  }
  if (frame?.bypass || inSchemaWork()) return;
  const pending = pendingOf(sequelize, proof);
  if (pending.length === 0) return;
  const shape = shapeOf(sql);
  if (shape.readable && shape.heads.every((head) => NOT_ROWS.has(head))) return;
  const missing = missingNow(state);
  const names = missing.size > 0 ? namesIn(sql) : undefined;
  const look = pending.filter((p) => !missing.has(p.key) || !names || names.has(p.name));
  if (look.length === 0) return;
  const result = (await connection.query(
    `SELECT v.i, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
            EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = '${POLICY_NAME}') AS policy,
            coalesce(${truncateTriggerInPlace('c')}, false) AS trigger
       FROM (VALUES ${look.map((p, i) => `(${i}, ${literal(qualified(sequelize, p.table))})`).join(', ')}) AS v(i, name)
       LEFT JOIN pg_class c ON c.oid = to_regclass(v.name)`,
  )) as { rows?: Array<{ i: number; enabled: boolean | null; forced: boolean | null; policy: boolean | null; trigger: boolean | null }> };
  const wrong: string[] = [];
  let first: Pending | undefined;
  for (const row of result.rows ?? []) {
    const p = look[Number(row.i)] as Pending;
    if (row.enabled === null) {
      missing.set(p.key, proof.epoch); // no such table (yet): a statement that names it fails on its own
      continue;
    }
    missing.delete(p.key);
    if (row.enabled && row.forced && row.policy && row.trigger) {
      proof.proven.add(p.key);
      continue;
    }
    first ??= p;
    const lacks = [
      !row.enabled && 'ENABLE ROW LEVEL SECURITY',
      !row.forced && 'FORCE ROW LEVEL SECURITY',
      !row.policy && `the policy ${POLICY_NAME}`,
      !row.trigger && `the TRUNCATE trigger ${TRUNCATE_TRIGGER}`,
    ];
    wrong.push(`${p.name} (missing: ${lacks.filter(Boolean).join(', ')})`);
  }
  if (!first) return;
  throw new MultitenantError(
    `${wrong.length > 1 ? 'tables' : 'table'} without row-level security (rls: true): ${wrong.join('; ')}. While a tenant table has none, a statement could reach every tenant's rows — directly, through a view or a function — so this one was not sent. Run sequelize.sync() (it makes the policies and triggers), or enableRowLevelSecurity(queryInterface, '${first.name}', { column }) in a migration: ${sql.slice(0, 200)}`,
    { model: first.model.name, operation: 'rls', tenant: frame?.tenant ? tenantIdOf(frame.tenant) : undefined },
  );
}
