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

const CONTROL =
  /^\s*(?:(BEGIN|START\s+TRANSACTION)|(COMMIT|END)|(ROLLBACK\s+(?:WORK\s+|TRANSACTION\s+)?TO)|(ROLLBACK|ABORT)|SAVEPOINT|RELEASE|SET\s+TRANSACTION|SET\s+SESSION\s+CHARACTERISTICS)\b/i;

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

/** Runs one statement with the settings its providers ask for (internal: the Query#run wrapper). */
export async function runWithSettings<T>(
  query: { sequelize: Sequelize; connection?: unknown },
  sql: string,
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
    let wrap: string | undefined;
    if (!control && !state.aborted) {
      const session = new Map<string, string>();
      const local = new Map<string, string>();
      for (const provider of list) {
        const wanted = await provider(connection, { sql, inTransaction: state.inTransaction });
        if (!wanted) continue;
        const mine = new Map<string, string>();
        for (const [name, value] of Object.entries(wanted.values)) {
          if (wanted.local) {
            if (state.local.get(name) !== value) mine.set(name, value);
          } else {
            if (state.held.get(name) !== value) session.set(name, value);
          }
        }
        if (mine.size > 0) {
          for (const [name, value] of Object.entries(wanted.before ?? {})) if (state.local.get(name) !== value) local.set(name, value);
          for (const [name, value] of mine) local.set(name, value);
        }
      }
      if (session.size > 0) {
        for (const name of session.keys()) state.held.delete(name);
        await send(state, connection, assignments(session, false));
        for (const [name, value] of session) state.held.set(name, value);
      }
      if (local.size > 0) {
        if (state.inTransaction) {
          await send(state, connection, assignments(local, true));
          for (const [name, value] of local) state.local.set(name, value);
        } else {
          wrap = `BEGIN; ${assignments(local, true)}`;
        }
      }
    }
    if (wrap) return await wrapped(state, connection, wrap, sql, run);
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

async function send(state: ConnectionState, connection: PgConnection, sql: string): Promise<void> {
  try {
    await connection.query(sql);
  } catch (err) {
    if (state.inTransaction) state.aborted = true;
    throw err;
  }
}

/** A statement outside any transaction that needs SET LOCAL: in a transaction block of its own. */
async function wrapped<T>(state: ConnectionState, connection: PgConnection, begin: string, sql: string, run: () => Promise<T>): Promise<T> {
  try {
    await connection.query(begin);
  } catch (err) {
    await connection.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  let result: T;
  try {
    result = await run();
  } catch (err) {
    await connection.query('ROLLBACK').catch(() => forget(state));
    throw err;
  }
  await connection.query('COMMIT');
  if (TOUCHES_SETTINGS.test(sql)) forget(state);
  return result;
}
