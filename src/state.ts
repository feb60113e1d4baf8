// The per-Sequelize-instance state of the plugin, and the types of what it holds (the options of
// multitenant()). The bottom of the tree: every room may read it, and it imports no room above it
// (only types from context.ts). plugin.ts creates and registers the state; the rooms receive it or
// look it up with stateOf().
import type { Sequelize } from 'sequelize';
import type { ClsNamespace } from './context';

/** `'off'` (default): no checks. `'warn'`: an unscoped statement is reported and runs. `'throw'`: it fails before it runs. */
export type AuditMode = 'off' | 'warn' | 'throw';

/** Where one-line notices and warnings go: the `notice` option, by default `console.warn`. */
export type NoticeHandler = ((message: string) => void) | false;

/** Options of `multitenant(sequelize, options)`. */
export interface MultitenantOptions {
  /**
   * With no tenant set and outside `withoutTenant`, a query on a tenant model throws
   * `MissingTenantError` before any SQL is sent (creating rows of the tenant table itself is allowed).
   * @default false (queries run unscoped when no tenant is set)
   */
  strict?: boolean;
  /**
   * A cls-hooked namespace to hold the tenant. Default: the library's own AsyncLocalStorage context,
   * or the namespace given to `Sequelize.useCLS(ns)` when the application uses one, so that the tenant
   * and Sequelize's CLS transaction share one context.
   * @default undefined
   */
  namespace?: ClsNamespace;
  /**
   * Stamp the tenant on inserts but add no filters to reads, updates and deletes: the migration path
   * for an existing application whose rows are still being backfilled.
   * @default false
   */
  writeOnly?: boolean;
  /**
   * Where one-line notices and warnings go: a key Citus would reject, a Citus step skipped on plain
   * PostgreSQL. `false` silences them.
   * @default console.warn
   */
  notice?: NoticeHandler;
  /**
   * The tenant-safety auditor: every statement sent (ORM-built, raw, `hooks: false`) is parsed with the
   * PostgreSQL parser (the `libpg-query` package) and checked to constrain every tenant table to the
   * current tenant. `'throw'` (recommended in tests) refuses an unscoped statement before it runs with
   * `UnscopedQueryError`; `'warn'` reports it through `notice` and lets it run. Left out, it is read from
   * the environment variable `SEQUELIZE_MULTITENANT_AUDIT` (`off`, `warn` or `throw`): a staging
   * deployment or a test run turns the auditor on for every instance without a code change.
   * @default 'off' (or `SEQUELIZE_MULTITENANT_AUDIT` when set)
   */
  audit?: AuditMode;
  /**
   * Row-level security, the database's own second line: `sync()` makes one policy per tenant table (ENABLE
   * and FORCE ROW LEVEL SECURITY, USING and WITH CHECK on the tenant column), and every statement this
   * instance sends — ORM, raw `sequelize.query`, `hooks: false`, in transactions — runs with the current
   * tenant(s) in a setting of its connection (`withoutTenant`: an explicit bypass). With no tenant the
   * database shows and changes no tenant rows. PostgreSQL and Citus; the role must not be a superuser or
   * have BYPASSRLS.
   * @default false
   */
  rls?: boolean;
  /**
   * Sequelize's log line of each statement says the tenant it ran for: `Executing (default; tenant=7): SELECT ...`
   * (`tenant=(none)` outside any tenant, `tenant=(withoutTenant)` in a bypass; each id URL-encoded), and the options object the
   * `logging` function receives carries `tenant` (the id or ids) for structured loggers.
   * @default false
   */
  logTenant?: boolean;
  /**
   * Every statement this instance sends carries the current tenant as a sqlcommenter tag,
   * `SELECT ... /*tenant='7'*\/` — in PostgreSQL's own logs, `pg_stat_activity`, slow-query logs and on
   * Citus' workers. Statements outside any tenant are sent unchanged.
   * @default false
   */
  sqlComment?: boolean;
}

/** Per-Sequelize-instance state (internal). */
export interface PluginState {
  options: Required<Pick<MultitenantOptions, 'strict' | 'writeOnly'>> & MultitenantOptions;
  /** The last install-time canary run (its cost is in `bench/canary.ts`). */
  canary?: CanaryReport;
  /**
   * Statements the library proved safe against the catalog just before sending them (a `TRUNCATE ...
   * CASCADE` whose cascade reaches no tenant table: scope/truncate.ts), each let through the auditor once.
   */
  vetted?: Map<string, number>;
}

/** Lets `sql` through the auditor once: the library proved it safe (see `PluginState.vetted`). */
export function vetStatement(state: PluginState, sql: string): void {
  state.vetted ??= new Map();
  state.vetted.set(sql, (state.vetted.get(sql) ?? 0) + 1);
}

/** True (and used up) when `sql` was vetted by the library. */
export function takeVetted(state: PluginState, sql: string): boolean {
  const n = state.vetted?.get(sql);
  if (!n) return false;
  if (n === 1) state.vetted?.delete(sql);
  else state.vetted?.set(sql, n - 1);
  return true;
}

/** Result of one canary run (`canary.ts`; read by its tests and `bench/canary.ts`). */
export interface CanaryReport {
  /** One entry per operation: the statements built and the references found. */
  operations: { path: string; statements: string[]; unscoped: string[] }[];
  /** Milliseconds the run took. */
  ms: number;
}

const states = new WeakMap<Sequelize, PluginState>();

/** The plugin state of a Sequelize instance, or undefined when multitenant() was not called on it. */
export function stateOf(sequelize: Sequelize): PluginState | undefined {
  return states.get(sequelize);
}

/** True when multitenant() was called on this Sequelize instance. */
export function isInstalled(sequelize: Sequelize): boolean {
  return states.has(sequelize);
}

/** Records the state of a newly installed instance (plugin.ts, once per instance). */
export function registerState(sequelize: Sequelize, state: PluginState): void {
  states.set(sequelize, state);
}
