import type { Sequelize } from 'sequelize';
import { currentFrame } from './context';
import { MultitenantError } from './errors';
import { shapeOf } from './statements';

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
  /** Messages sent on the connection, and how many of them went through here: any other may have changed anything. */
  sent: number;
  seen: number;
  /** The turn of the last statement sent through here. */
  turn: Promise<void>;
  /** Run when the statement being sent has ended (`afterStatement`). */
  after: Array<() => void>;
  /** Run when the transaction block the connection is in has ended (committed or not). */
  afterTransaction: Array<() => void>;
}

const providers = new WeakMap<Sequelize, SettingsProvider[]>();
const connections = new WeakMap<object, ConnectionState>();

/** Adds a provider for every statement of `sequelize` (internal: routerOnly, row-level security). */
export function addSettingsProvider(sequelize: Sequelize, provider: SettingsProvider): void {
  providers.set(sequelize, [...(providers.get(sequelize) ?? []), provider]);
}

/** One transaction-control command (read past its leading comments: `shapeOf`). */
const CONTROL =
  /^(?:(BEGIN|START\s+TRANSACTION)|(COMMIT|END)|(ROLLBACK\s+(?:WORK\s+|TRANSACTION\s+)?TO)|(ROLLBACK|ABORT)|SAVEPOINT|RELEASE|SET\s+TRANSACTION|SET\s+SESSION\s+CHARACTERISTICS)\b/i;

/**
 * Statements that change settings, or may run code that does: SET (but SET TRANSACTION, SET SESSION
 * CHARACTERISTICS and SET CONSTRAINTS, which change no setting), RESET, DISCARD, a DO block or a procedure
 * (code that can build a SET at run time), EXECUTE, FETCH and MOVE (a prepared statement's or a
 * cursor's query runs then, not when its text was sent).
 */
const SETTING_HEADS = new Set(['SET', 'RESET', 'DISCARD', 'DO', 'CALL', 'EXECUTE', 'FETCH', 'MOVE']);
const CHANGES_NO_SETTING = /^SET\s+(?:TRANSACTION|SESSION\s+CHARACTERISTICS|CONSTRAINTS)\b/i;
/**
 * Looked for anywhere in the text, strings and comments included, in any case: set_config and
 * pg_settings (an UPDATE of it is a SET); the
 * functions that run a query given as text (its SELECT may call set_config: query_to_xml and its
 * kin, cursor_to_xml, ts_stat, ts_rewrite); a Unicode-escaped name (`U&"..."`); and the settings'
 * own prefix, quoted or not (`"sequelize_multitenant"."bypass"`, or with a space or a comment before the dot).
 */
const SETTING_WORDS = /set_config|pg_settings|query_to_xml|cursor_to_xml|ts_stat|ts_rewrite|U&|sequelize_multitenant/i;

/**
 * A statement of the application that may change a setting behind the cache's back: the cache is
 * emptied after it (what it costs: the next statement sends its settings again).
 */
export function touchesSettings(sql: string): boolean {
  if (SETTING_WORDS.test(sql)) return true;
  const shape = shapeOf(sql);
  if (!shape.readable) return true;
  return shape.heads.some((head, i) => SETTING_HEADS.has(head) && !CHANGES_NO_SETTING.test(shape.bare[i] ?? ''));
}

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
    const created: ConnectionState = {
      held: new Map(),
      local: new Map(),
      inTransaction: false,
      aborted: false,
      sent: 0,
      seen: 0,
      turn: Promise.resolve(),
      after: [],
      afterTransaction: [],
    };
    // every message sent on the client is counted, also those sent on it directly
    const target = connection as unknown as { query: QueryFn };
    const original = target.query;
    target.query = function counted(this: unknown, ...args: unknown[]) {
      created.sent++;
      return original.apply(this, args);
    };
    state = created;
    connections.set(connection, state);
  }
  return state;
}

function forget(state: ConnectionState): void {
  state.held.clear();
  state.local.clear();
}

/**
 * Runs `fn` once the statement the connection is about to send (the one whose settings are being
 * decided: call it from a provider) has ended, succeeded or failed — and, when it ran inside a
 * transaction block, once more when that block has ended: what the statement changed is seen by other
 * sessions only then. Internal: row-level security proves the tables again after a statement that may
 * make or change one.
 */
export function afterStatement(connection: PgConnection, fn: () => void): void {
  stateOf(connection).after.push(fn);
}

function runAll(list: Array<() => void>): void {
  for (const fn of list.splice(0)) fn();
}

/** The connection's transaction block has ended (as the server or the commands sent say). */
function transactionEnded(state: ConnectionState): void {
  runAll(state.afterTransaction);
}

/**
 * The transaction status the server reported with its last ReadyForQuery (`I` idle, `T` in a
 * transaction block, `E` in a failed one), as pg keeps it; undefined with a driver that does not.
 */
function serverStatus(connection: PgConnection): 'I' | 'T' | 'E' | undefined {
  const c = connection as { getTransactionStatus?: () => unknown; _txStatus?: unknown };
  const status = typeof c.getTransactionStatus === 'function' ? c.getTransactionStatus() : c._txStatus;
  return status === 'I' || status === 'T' || status === 'E' ? status : undefined;
}

type Control = 'begin' | 'commit' | 'rollbackTo' | 'rollback' | 'other' | undefined;

const TRANSACTION_HEADS = new Set(['BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE', 'PREPARE']);
/** Words that undo settings, looked for in the raw text: no reading of strings or comments can hide them from this. */
const UNDOING = /\b(?:ROLLBACK|ABORT|PREPARE)\b/i;
const TRUNCATING = /\bTRUNCATE\b/i;

/**
 * Inside a transaction, a message of several statements that also ends or rolls back (part of) the
 * transaction would undo the settings made in it before its later statements run — they would run under
 * whatever the connection held before. Refused under a tenant and with none; `withoutTenant` runs it.
 */
function assertNoHiddenControl(sql: string): void {
  const shape = shapeOf(sql);
  if (shape.readable && !shape.heads.some((head) => TRANSACTION_HEADS.has(head))) return;
  if (currentFrame()?.bypass) return;
  throw new MultitenantError(
    `inside a transaction, a message of several statements that controls the transaction (or cannot be read to its end) would run its later statements under settings it undid; send its statements one by one, or run it inside withoutTenant: ${sql.slice(0, 200)}`,
    { operation: 'rls' },
  );
}

/**
 * A message read as one statement that still holds a word that undoes settings (or truncates) outside
 * what it looks like: if the reading were wrong, PostgreSQL would run more than one statement. Sent
 * with the extended protocol, which takes one statement only: the server itself then refuses more.
 */
function mustBeOneStatement(sql: string, control: Control, single: boolean, inTransaction: boolean): boolean {
  if (!single || control || currentFrame()?.bypass) return false;
  return (inTransaction && UNDOING.test(sql)) || TRUNCATING.test(sql);
}

/** What one message is, for the cache: a single transaction-control command, a single other statement, or more. */
function classify(sql: string): { control: Control; single: boolean } {
  const shape = shapeOf(sql);
  const single = shape.readable && shape.statements.length === 1;
  if (!single) return { control: undefined, single };
  const m = CONTROL.exec(shape.bare[0] ?? '');
  const control: Control = !m ? undefined : m[1] ? 'begin' : m[2] ? 'commit' : m[3] ? 'rollbackTo' : m[4] ? 'rollback' : 'other';
  return { control, single };
}

/**
 * Before a statement: pg hands a failed query's error over before the server's ReadyForQuery (which
 * carries the transaction status) has arrived. Waits for it, so the status read next is the server's.
 */
async function settled(connection: PgConnection): Promise<void> {
  type Listener = (event: string, fn: () => void) => unknown;
  const c = connection as { readyForQuery?: boolean; connection?: { once?: Listener; removeListener?: Listener } };
  const events = c.connection;
  if (c.readyForQuery !== false || typeof events?.once !== 'function' || typeof events.removeListener !== 'function') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const e of ['readyForQuery', 'end', 'error']) events.removeListener?.call(events, e, done);
      resolve();
    };
    const timer = setTimeout(done, 2000);
    for (const e of ['readyForQuery', 'end', 'error']) events.once?.call(events, e, done);
  });
}

/**
 * The server's transaction status is the truth about transactions (a COMMIT that failed, a ROLLBACK
 * hidden inside a longer message, a statement sent on the client directly): a transaction that ended
 * unseen may have undone SETs made inside it, so the cache is emptied.
 */
function syncWithServer(state: ConnectionState, connection: PgConnection): void {
  const status = serverStatus(connection);
  if (status === undefined) return;
  if (status === 'I') {
    if (state.inTransaction) {
      forget(state);
      transactionEnded(state);
    }
    state.inTransaction = false;
    state.aborted = false;
    state.local.clear();
  } else {
    if (!state.inTransaction) state.local.clear();
    state.inTransaction = true;
    state.aborted = status === 'E';
  }
}

/**
 * After a message that succeeded: what the connection holds now. A message of several statements, or
 * one that touches settings, may have changed or undone any setting: the cache is emptied. A
 * transaction that ended other than by the COMMIT of a sound one may have undone SETs made inside it:
 * emptied too.
 */
function reconcile(state: ConnectionState, connection: PgConnection, sql: string, control: Control, single: boolean): void {
  // ROLLBACK [AND CHAIN], ROLLBACK TO, and a COMMIT [AND CHAIN] of a failed transaction undo SETs,
  // also when the server stays in a transaction block (AND CHAIN, savepoints)
  const undone = control === 'rollback' || control === 'rollbackTo' || (control === 'commit' && state.aborted);
  if (!single || undone || touchesSettings(sql)) forget(state);
  if (serverStatus(connection) === undefined) {
    legacySuccess(state, control);
    return;
  }
  if (state.inTransaction && serverStatus(connection) === 'I' && control !== 'commit') forget(state);
  syncWithServer(state, connection);
}

/** A driver that does not report the status: follow the commands as sent. */
function legacySuccess(state: ConnectionState, control: Control): void {
  if (control === 'begin') {
    state.inTransaction = true;
    state.aborted = false;
  } else if (control === 'commit' || control === 'rollback') {
    if (control === 'rollback' || state.aborted) forget(state);
    state.inTransaction = false;
    state.aborted = false;
    state.local.clear();
    transactionEnded(state);
  } else if (control === 'rollbackTo') state.aborted = false;
}

function legacyFailure(state: ConnectionState, control: Control): void {
  if (control === 'commit' || control === 'rollback') {
    transactionEnded(state);
    state.inTransaction = false;
    state.aborted = false;
  } else if (state.inTransaction) state.aborted = true;
}

/**
 * Per connection: the providers of the instance it belongs to, recorded at its first statement with
 * settings. Another instance's statement on that connection — sent in this instance's transaction,
 * explicitly or through `Sequelize.useCLS` — gets them too: it runs with the current unit of work's
 * settings, never with the ones the connection last held (another tenant's, the bypass).
 */
const owners = new WeakMap<object, SettingsProvider[]>();

/**
 * True when a statement on `query`'s connection may need settings — a provider is registered for its
 * instance (rls, routerOnly), or the connection belongs to an instance with one — and it runs on a
 * connection of pg's: `runWithSettings` has work to do.
 */
export function settingsApply(query: { sequelize: Sequelize; connection?: unknown }): boolean {
  const connection = query.connection as PgConnection | undefined;
  if (!connection || typeof connection.query !== 'function') return false;
  return providers.has(query.sequelize) || owners.has(connection);
}

/**
 * Runs one statement with the settings its providers ask for (internal: the Query#run wrapper). A
 * single statement without bind parameters that reads or writes rows carries its settings in the same
 * message (`SET ...; <statement>`: no extra round trip); any other sends them ahead.
 */
export async function runWithSettings<T>(
  query: { sequelize: Sequelize; connection?: unknown },
  sql: string,
  parameters: readonly unknown[] | undefined,
  run: () => Promise<T>,
): Promise<T> {
  const connection = query.connection as PgConnection | undefined;
  if (!connection || typeof connection.query !== 'function') return run();
  const own = providers.get(query.sequelize);
  const list = own ?? owners.get(connection);
  if (!list) return run();
  if (own && !owners.has(connection)) owners.set(connection, own);
  const state = stateOf(connection);
  const previous = state.turn;
  let done: () => void = () => undefined;
  state.turn = new Promise<void>((resolve) => {
    done = resolve;
  });
  await previous;
  try {
    await settled(connection);
    if (state.sent !== state.seen) forget(state); // a statement sent on the client directly
    syncWithServer(state, connection);
    const { control, single } = classify(sql);
    if (!single && state.inTransaction) assertNoHiddenControl(sql);
    const runOne = mustBeOneStatement(sql, control, single, state.inTransaction) ? () => oneStatement(connection, run) : run;
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
    }
    if (!session && !local) {
      let result: T;
      try {
        result = await runOne();
      } catch (err) {
        // what the failed message undid is not known (and its transaction status arrives after the error)
        forget(state);
        if (serverStatus(connection) === undefined) legacyFailure(state, control);
        throw err;
      }
      reconcile(state, connection, sql, control, single);
      return result;
    }
    if (session) for (const name of session.keys()) state.held.delete(name);
    const wrap = !!local && !state.inTransaction;
    // one readable statement only: a message of several could undo (ROLLBACK) or outlive (BEGIN) the settings
    const combined = single && !parameters?.length && readsOrWritesRows(sql) && !UNDOING.test(sql) && !TRUNCATING.test(sql);
    const prefix = session ? `${assignments(session, false)}; ` : '';
    let result: T;
    try {
      // Citus propagates a SET LOCAL by sending the whole message it came in to the workers: a message of its own
      if (local) {
        await connection.query(`${wrap ? 'BEGIN; ' : ''}${assignments(local, true)}`);
        if (!wrap) for (const [name, value] of local) state.local.set(name, value);
      }
      if (combined) result = await withSettings(connection, prefix, session?.size ?? 0, wrap ? '\n; COMMIT' : '', run);
      else {
        if (session) await connection.query(prefix.slice(0, -2));
        result = await runOne();
        if (wrap) await connection.query('COMMIT');
      }
    } catch (err) {
      // (pg reports an error before the server's ReadyForQuery: the status is read at the next statement)
      if (wrap) await connection.query('ROLLBACK').catch(() => undefined);
      forget(state);
      throw err;
    }
    if (wrap && serverStatus(connection) === 'T') {
      // the block is still open: the statement's own text ended it otherwise than we did. Nothing of it stays.
      await connection.query('ROLLBACK').catch(() => undefined);
      forget(state);
      throw new MultitenantError(`a statement left the transaction block it was sent in open; it was rolled back: ${sql.slice(0, 200)}`, {
        operation: 'rls',
      });
    }
    if (session) for (const [name, value] of session) state.held.set(name, value);
    reconcile(state, connection, sql, undefined, single);
    return result;
  } finally {
    state.seen = state.sent;
    if (state.after.length > 0) {
      // still in a transaction block: once more when it ends
      if (state.inTransaction) state.afterTransaction.push(...state.after);
      runAll(state.after);
    }
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

/** Runs `run` with the connection's next query sent by the extended protocol (one statement, or the server refuses it). */
async function oneStatement<T>(connection: PgConnection, run: () => Promise<T>): Promise<T> {
  const target = connection as unknown as { query: QueryFn };
  const original = target.query;
  const once: QueryFn = function (this: unknown, text, ...rest) {
    target.query = original;
    return original.apply(this, [typeof text === 'string' ? { text, queryMode: 'extended' } : text, ...rest]);
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
const ROWS = /^(?:SELECT|WITH|INSERT|UPDATE|DELETE|MERGE|VALUES|TABLE)\b/i;
const CITUS_ADMIN =
  /^SELECT\s+(?:\*\s+FROM\s+)?(?:pg_catalog\.)?(?:citus_|master_|isolate_tenant_to_new_shard|create_distributed|create_reference_table|undistribute_table|alter_distributed_table|alter_table_set_access_method|rebalance_table_shards|get_rebalance|update_distributed_table_colocation|replicate_reference_tables|start_metadata_sync|stop_metadata_sync|create_time_partitions|drop_old_time_partitions)\w*\s*\(/i;

export function readsOrWritesRows(sql: string): boolean {
  // the first statement as PostgreSQL reads it (comments skipped the way shapeOf skips them), past any `(`
  const head = (shapeOf(sql).bare[0] ?? '').replace(/^\(*\s*/, '');
  return ROWS.test(head) && !CITUS_ADMIN.test(head);
}
