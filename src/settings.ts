import type { Sequelize } from 'sequelize';

// Per-connection settings a statement must run with (routerOnly's citus.multi_task_query_log_level;
// the same mechanism serves any setting that follows the current tenant). Applied where Sequelize
// sends the final SQL (the dialect's Query#run), so that every statement — ORM, raw, `hooks: false`,
// inside transactions — gets them. What a connection holds is tracked with the transaction around it:
// a SET inside a transaction is undone by ROLLBACK (and ROLLBACK TO SAVEPOINT), so the cache is dropped
// then; nothing is sent before a transaction-control statement (in an aborted transaction only ROLLBACK
// runs); and statements sharing one connection (Promise.all inside a transaction) take turns, each
// with its own settings, instead of overwriting each other's.

/** The settings one statement needs (undefined: none), decided when it is sent. */
export type SettingsProvider = (
  connection: PgConnection,
) => Promise<Record<string, string> | undefined> | Record<string, string> | undefined;

export interface PgConnection {
  query(sql: string): Promise<unknown>;
}

interface ConnectionState {
  /** What the connection holds now, as far as known; a key absent means unknown. */
  held: Map<string, string>;
  inTransaction: boolean;
  aborted: boolean;
  /** The turn of the last statement sent through here. */
  turn: Promise<void>;
}

const providers = new WeakMap<Sequelize, SettingsProvider[]>();
const connections = new WeakMap<object, ConnectionState>();

/** Adds a provider for every statement of `sequelize` (internal: routerOnly). */
export function addSettingsProvider(sequelize: Sequelize, provider: SettingsProvider): void {
  providers.set(sequelize, [...(providers.get(sequelize) ?? []), provider]);
}

const CONTROL =
  /^\s*(?:(BEGIN|START\s+TRANSACTION)|(COMMIT|END)|(ROLLBACK\s+(?:WORK\s+|TRANSACTION\s+)?TO)|(ROLLBACK|ABORT)|SAVEPOINT|RELEASE|SET\s+TRANSACTION|SET\s+SESSION\s+CHARACTERISTICS)\b/i;

const quote = (value: string) => `'${value.replace(/'/g, "''")}'`;

function stateOf(connection: object): ConnectionState {
  let state = connections.get(connection);
  if (!state) {
    state = { held: new Map(), inTransaction: false, aborted: false, turn: Promise.resolve() };
    connections.set(connection, state);
  }
  return state;
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
    if (!control && !state.aborted) {
      for (const provider of list) {
        const wanted = await provider(connection);
        for (const [name, value] of Object.entries(wanted ?? {})) {
          if (state.held.get(name) === value) continue;
          state.held.delete(name);
          try {
            await connection.query(`SET ${name} = ${quote(value)}`);
          } catch (err) {
            if (state.inTransaction) state.aborted = true;
            throw err;
          }
          state.held.set(name, value);
        }
      }
    }
    let result: T;
    try {
      result = await run();
    } catch (err) {
      if (state.inTransaction && !control) state.aborted = true;
      if (control?.[3] || control?.[4]) {
        // a failed ROLLBACK: the session is in an unknown state
        state.held.clear();
      }
      throw err;
    }
    if (control?.[1]) {
      state.inTransaction = true;
      state.aborted = false;
    } else if (control?.[2]) {
      // COMMIT of an aborted transaction rolls it back
      if (state.aborted) state.held.clear();
      state.inTransaction = false;
      state.aborted = false;
    } else if (control?.[3]) {
      state.held.clear();
      state.aborted = false;
    } else if (control?.[4]) {
      state.held.clear();
      state.inTransaction = false;
      state.aborted = false;
    }
    return result;
  } finally {
    done();
  }
}
