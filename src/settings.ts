import type { Sequelize } from 'sequelize';

// Per-connection settings a statement must run with (routerOnly's citus.multi_task_query_log_level, the
// row-level security tenant). Applied where Sequelize sends the final SQL (the dialect's Query#run), so
// that every statement — ORM, raw, `hooks: false`, inside transactions — gets them.
//
// Two kinds:
// - session settings (`SET`): what a connection holds is cached, so a connection that already holds the
//   right value costs no round trip. A SET inside a transaction is undone by ROLLBACK (and ROLLBACK TO
//   SAVEPOINT): the cache is dropped then, and nothing is sent before a transaction-control statement
//   (in an aborted transaction only ROLLBACK runs).
// - local settings (`SET LOCAL`, for Citus, where only those reach the workers): inside a transaction
//   they are sent once per transaction (again after a ROLLBACK TO); a statement outside any transaction
//   that needs one runs in a transaction block of its own: `BEGIN; SET LOCAL ...`, the statement, COMMIT.
// Statements sharing one connection (Promise.all inside a transaction) take turns, each with its own
// settings, instead of overwriting each other's.

/** What one statement needs from one provider. */
export interface WantedSettings {
  /** Setting name → value, sent in this order. */
  values: Record<string, string>;
  /** `SET LOCAL` inside a transaction block (Citus) instead of a cached session `SET`. */
  local?: boolean;
  /** Local settings sent first whenever one of `values` is sent, unless the transaction holds them already. */
  before?: Record<string, string>;
}

/** The settings one statement needs (undefined: none), decided when it is sent. */
export type SettingsProvider = (
  connection: PgConnection,
  statement: { sql: string; inTransaction: boolean },
) => Promise<WantedSettings | undefined> | WantedSettings | undefined;

export interface PgConnection {
  query(sql: string): Promise<unknown>;
}

interface ConnectionState {
  /**
   * Session settings the connection holds now, as far as known; a key absent means unknown — also on a
   * new connection: a pooler or an embedded server may hand over a session that already holds values.
   */
  held: Map<string, string>;
  /** SET LOCAL values of the open transaction. */
  local: Map<string, string>;
  inTransaction: boolean;
  aborted: boolean;
  /** The turn of the last statement sent through here. */
  turn: Promise<void>;
}

const providers = new WeakMap<Sequelize, SettingsProvider[]>();
const connections = new WeakMap<object, ConnectionState>();

/** Adds a provider for every statement of `sequelize` (internal: routerOnly, row-level security). */
export function addSettingsProvider(sequelize: Sequelize, provider: SettingsProvider): void {
  providers.set(sequelize, [...(providers.get(sequelize) ?? []), provider]);
}

/**
 * A statement that is one transaction-control command and nothing else (Sequelize sends them one by
 * one). A message that starts with BEGIN but goes on (`BEGIN; UPDATE ...; COMMIT`) is no control: it
 * gets the settings like any statement that may touch rows.
 */
const CONTROL =
  /^\s*(?:(BEGIN|START\s+TRANSACTION)|(COMMIT|END)|(ROLLBACK\s+(?:WORK\s+|TRANSACTION\s+)?TO)|(ROLLBACK|ABORT)|SAVEPOINT|RELEASE|SET\s+TRANSACTION|SET\s+SESSION\s+CHARACTERISTICS)\b[^;]*;?\s*$/i;

/** A statement of the application that may change a setting behind the cache's back. */
const TOUCHES_SETTINGS = /sequelize_multitenant\.|set_config|\bRESET\b|\bDISCARD\b|\bSET\s+(?:SESSION\s+|LOCAL\s+)?citus\./i;

/**
 * A string literal that holds any text: an escape string (`E'...'`), whose quoting does not depend on
 * `standard_conforming_strings`. A NUL cannot be in a PostgreSQL string: refused by the caller.
 */
export const literal = (value: string): string => `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

const assignments = (entries: Iterable<[string, string]>, local: boolean): string =>
  [...entries].map(([name, value]) => `SET ${local ? 'LOCAL ' : ''}${name} = ${literal(value)}`).join('; ');

function stateOf(connection: object): ConnectionState {
  let state = connections.get(connection);
  if (!state) {
    state = { held: new Map(), local: new Map(), inTransaction: false, aborted: false, turn: Promise.resolve() };
    connections.set(connection, state);
  }
  return state;
}

function forget(state: ConnectionState): void {
  state.held.clear();
  state.local.clear();
}

/**
 * Runs one statement with the settings its providers ask for (internal: the Query#run wrapper). A
 * statement without bind parameters that reads or writes rows carries its settings in the same message
 * (`SET ...; <statement>`: no extra round trip); any other sends them ahead.
 */
export async function runWithSettings<T>(
  query: { sequelize: Sequelize; connection?: unknown },
  sql: string,
  parameters: readonly unknown[] | undefined,
  run: () => Promise<T>,
): Promise<T> {
  const list = providers.get(query.sequelize);
  const connection = query.connection as PgConnection | undefined;
  if (!list || !connection || typeof connection.query !== 'function') return run();
  const state = stateOf(connection);
  const previous = state.turn;
  let done: () => void = () => undefined;
  state.turn = new Promise<void>((resolve) => {
    done = resolve;
  });
  await previous;
  try {
    const control = CONTROL.exec(sql);
    let wrap = false;
    let session: Map<string, string> | undefined;
    let local: Map<string, string> | undefined;
    if (!control && !state.aborted) {
      for (const provider of list) {
        const wanted = await provider(connection, { sql, inTransaction: state.inTransaction });
        if (!wanted) continue;
        let mine: Map<string, string> | undefined;
        for (const name in wanted.values) {
          const value = wanted.values[name] as string;
          if (wanted.local) {
            if (state.local.get(name) === value) continue;
            mine ??= new Map();
            mine.set(name, value);
          } else if (state.held.get(name) !== value) {
            session ??= new Map();
            session.set(name, value);
          }
        }
        if (mine) {
          local ??= new Map();
          for (const [name, value] of Object.entries(wanted.before ?? {})) if (state.local.get(name) !== value) local.set(name, value);
          for (const [name, value] of mine) local.set(name, value);
        }
      }
      if (session) for (const name of session.keys()) state.held.delete(name);
      if (local) wrap = !state.inTransaction;
    }
    if (session || local) {
      // Citus propagates a SET LOCAL by sending the whole message it came in to the workers: a message of its own
      const combined = !parameters?.length && readsOrWritesRows(sql);
      const prefix = session ? `${assignments(session, false)}; ` : '';
      let result: T;
      try {
        if (local) await send(state, connection, `${wrap ? 'BEGIN; ' : ''}${assignments(local, true)}`);
        if (combined) result = await withSettings(connection, prefix, session?.size ?? 0, wrap ? '; COMMIT' : '', run);
        else {
          if (session) await send(state, connection, prefix.slice(0, -2));
          result = await run();
          if (wrap) await connection.query('COMMIT');
        }
      } catch (err) {
        if (wrap) await connection.query('ROLLBACK').catch(() => forget(state));
        else if (state.inTransaction) state.aborted = true;
        throw err;
      }
      if (session) for (const [name, value] of session) state.held.set(name, value);
      if (local && !wrap) for (const [name, value] of local) state.local.set(name, value);
      if (TOUCHES_SETTINGS.test(sql)) forget(state);
      return result;
    }
    let result: T;
    try {
      result = await run();
    } catch (err) {
      if (state.inTransaction && !control) state.aborted = true;
      // a failed ROLLBACK: the session is in an unknown state
      if (control?.[3] || control?.[4]) forget(state);
      throw err;
    }
    if (!control) {
      if (TOUCHES_SETTINGS.test(sql)) forget(state);
    } else if (control[1]) {
      state.inTransaction = true;
      state.aborted = false;
      state.local.clear();
    } else if (control[2]) {
      // COMMIT of an aborted transaction rolls it back
      if (state.aborted) forget(state);
      state.inTransaction = false;
      state.aborted = false;
      state.local.clear();
    } else if (control[3]) {
      forget(state);
      state.aborted = false;
    } else if (control[4]) {
      forget(state);
      state.inTransaction = false;
      state.aborted = false;
    }
    return result;
  } finally {
    done();
  }
}

type Callback = (err: unknown, result?: unknown) => void;
type QueryFn = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Runs `run` with the connection's next query carrying `prefix` (the settings, `count` statements) and
 * `suffix` in the same message; the results of those are taken off what the driver hands back, so the
 * caller sees the result of its own statement only. A call of another shape than Sequelize's
 * `query(sql, callback)` gets the settings as a query of its own first, and runs only once they are set.
 */
async function withSettings<T>(connection: PgConnection, prefix: string, count: number, suffix: string, run: () => Promise<T>): Promise<T> {
  const target = connection as unknown as { query: QueryFn };
  const original = target.query;
  const own = suffix ? 1 : 0;
  const once: QueryFn = function (this: unknown, text, ...rest) {
    target.query = original;
    const last = rest[rest.length - 1];
    if (typeof text === 'string' && rest.length === 1 && typeof last === 'function') {
      return original.call(this, prefix + text + suffix, (err: unknown, result: unknown) => {
        if (Array.isArray(result)) {
          const mine = result.slice(count, result.length - own);
          (last as Callback)(err, mine.length === 1 ? mine[0] : mine);
        } else (last as Callback)(err, result);
      });
    }
    const settings = prefix.slice(0, -2);
    if (typeof last === 'function') {
      original.call(this, settings, (err: unknown) => {
        if (err) return (last as Callback)(err);
        original.apply(this, [text, ...rest.slice(0, -1), suffix ? commitAfter(original, this, last as Callback) : last]);
      });
      return undefined;
    }
    return (original.call(this, settings) as Promise<unknown>)
      .then(() => original.apply(this, [text, ...rest]))
      .then(async (result) => {
        if (suffix) await original.call(this, 'COMMIT');
        return result;
      });
  };
  target.query = once;
  try {
    return await run();
  } finally {
    if (target.query === once) target.query = original;
  }
}

function commitAfter(original: QueryFn, self: unknown, callback: Callback): Callback {
  return (err, result) => {
    if (err) return callback(err, result);
    original.call(self, 'COMMIT', (commitErr: unknown) => callback(commitErr ?? null, result));
  };
}

/**
 * Statements that read or write rows: they may carry their settings in the same message, and on Citus
 * run in a transaction block of their own. Citus's administration functions are not: several of them
 * refuse to run in a transaction block (create_distributed_table_concurrently, citus_rebalance_start, ...).
 */
const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*\(*\s*/;
const ROWS = /^(?:SELECT|WITH|INSERT|UPDATE|DELETE|MERGE|VALUES|TABLE)\b/i;
const CITUS_ADMIN =
  /^SELECT\s+(?:\*\s+FROM\s+)?(?:pg_catalog\.)?(?:citus_|master_|isolate_tenant_to_new_shard|create_distributed|create_reference_table|undistribute_table|alter_distributed_table|alter_table_set_access_method|rebalance_table_shards|get_rebalance|update_distributed_table_colocation|replicate_reference_tables|start_metadata_sync|stop_metadata_sync|create_time_partitions|drop_old_time_partitions)\w*\s*\(/i;

export function readsOrWritesRows(sql: string): boolean {
  const head = sql.replace(LEADING, '');
  return ROWS.test(head) && !CITUS_ADMIN.test(head);
}

async function send(state: ConnectionState, connection: PgConnection, sql: string): Promise<void> {
  try {
    await connection.query(sql);
  } catch (err) {
    if (state.inTransaction) state.aborted = true;
    throw err;
  }
}
