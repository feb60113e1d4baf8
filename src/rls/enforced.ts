// Under `rls: true`, row-level security is never silently off. The policies are made by the sync paths
// the library sees; a tenant table that has none (created by plain Sequelize, by a migration without
// enableRowLevelSecurity, by a sync that ran before the plugin was installed) would show every tenant's
// rows to raw SQL — directly, through a view, through a function. So while a tenant table of the
// instance exists without ENABLE, FORCE, the library's policy and its TRUNCATE trigger (TRUNCATE is not
// subject to policies), every statement about rows (not DDL, settings, transaction control) is refused
// with a MultitenantError before it is sent; outside withoutTenant (which sees every row anyway) and
// outside the library's own schema work (a sync, its catalog reads). The tables are looked at once — at
// the first such statement, again when models are added — and a table proven once is not looked at again.
// A tenant model whose table does not exist yet is looked at again when a statement names it, or after
// the instance sent DDL.
import type { Sequelize } from 'sequelize';
import { currentFrame, inSchemaWork } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { metaOf, models } from '../schema/graph';
import { bare, qualified, type TableName, tableKey } from '../schema/sql';
import { literal, type PgConnection } from '../settings';
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
  /** Bumped by every statement that may create, rename or move a table: each connection proves again. */
  epoch: number;
  proofs: WeakMap<object, ConnectionProof>;
  /** Tenant tables that did not exist when last looked at (tableKey). */
  missing: Set<string>;
}
const states = new WeakMap<Sequelize, InstanceState>();

function stateFor(sequelize: Sequelize): InstanceState {
  let state = states.get(sequelize);
  if (!state) {
    state = { epoch: 0, proofs: new WeakMap(), missing: new Set() };
    states.set(sequelize, state);
  }
  return state;
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

/** Statements that may make, rename or move a table: DDL, a DO block, a procedure, `SELECT ... INTO`. */
const MAKERS = new Set(['CREATE', 'ALTER', 'DO', 'CALL', 'IMPORT']);
function mayMakeTables(sql: string): boolean {
  if (!/\b(?:CREATE|ALTER|DO|CALL|IMPORT|INTO)\b/i.test(sql)) return false; // the common case, without reading the message
  const shape = shapeOf(sql);
  if (!shape.readable) return true;
  return shape.heads.some((head) => MAKERS.has(head)) || (!shape.heads.includes('INSERT') && /\bINTO\b/i.test(sql));
}

/**
 * Refuses a statement about rows while a tenant table exists without ENABLE + FORCE ROW LEVEL SECURITY,
 * the library's policy and its TRUNCATE trigger (enabled, calling the library's function).
 */
export async function assertPoliciesInPlace(sequelize: Sequelize, sql: string, connection: PgConnection): Promise<void> {
  const frame = currentFrame();
  const state = stateFor(sequelize);
  // a table made now may take a tenant table's place for unqualified names: every connection proves again
  // from the next statement on (this one is checked as things stand: what it makes does not exist yet)
  const makes = mayMakeTables(sql);
  const proof = proofOf(state, connection as unknown as object);
  if (makes) state.epoch++;
  if (frame?.bypass || inSchemaWork()) return;
  const pending = pendingOf(sequelize, proof);
  if (pending.length === 0) return;
  const shape = shapeOf(sql);
  if (shape.readable && shape.heads.every((head) => NOT_ROWS.has(head))) {
    // DDL may have made a missing table: look at it again
    if (shape.heads.includes('CREATE') || shape.heads.includes('ALTER')) state.missing.clear();
    return;
  }
  const names = state.missing.size > 0 ? namesIn(sql) : undefined;
  const look = pending.filter((p) => !state.missing.has(p.key) || !names || names.has(p.name));
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
      state.missing.add(p.key); // no such table (yet): a statement that names it fails on its own
      continue;
    }
    state.missing.delete(p.key);
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
