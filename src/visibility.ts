// Which tenant a statement ran for, where operators look: on Sequelize's log line of each statement
// (`logTenant`), as a sqlcommenter tag in the SQL itself (`sqlComment`: PostgreSQL's logs, pg_stat_activity,
// slow-query logs, Citus' workers), and on OpenTelemetry spans (`tenantSpanProcessor`). Off by default;
// off, nothing of this runs.
import type { Sequelize } from 'sequelize';
import { currentFrame } from './context';
import { checkOptions } from './options';
import { tenantIdOf } from './tenant';

/**
 * `text` URL-encoded with `!`, `'`, `(`, `)`, `*` and `~` too (which encodeURIComponent leaves): what the
 * tenant labels and an export's file names are made of — no quote, slash or parenthesis of the text's.
 */
export function encodeStrictly(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An id as it shows: no id can look like two, or like a marker. */
const shown = (id: unknown): string => encodeStrictly(String(id));

/**
 * The tenant of the current unit of work as one word: `7`, `1,2` for two tenants (a tenant `'1,2'` shows
 * as `1%2C2`), `(withoutTenant)` in a bypass (a tenant named so shows as `%28withoutTenant%29`), or
 * undefined outside any tenant. Each id URL-encoded: no newline, quote or comment of an id's reaches a
 * log line, a SQL comment or a span.
 */
export function tenantLabel(): string | undefined {
  const frame = currentFrame();
  if (!frame) return undefined;
  if (frame.bypass) return '(withoutTenant)';
  if (!frame.tenant) return undefined;
  const id = tenantIdOf(frame.tenant);
  return Array.isArray(id) ? id.map(shown).join(',') : shown(id);
}

/**
 * `sql` with a sqlcommenter tag of the current tenant (`SELECT ... /*tenant='7'*\/;`): appended, before a
 * trailing `;`, the value URL-encoded as the sqlcommenter specification asks — so no `/` (hence neither
 * `*\/` nor a nested `/*`) and no quote of the tenant's can reach the SQL. Unchanged outside a tenant.
 */
export function tagWithTenant(sql: string): string {
  const label = tenantLabel();
  if (label === undefined) return sql;
  const tag = `/*tenant='${encodeURIComponent(label).replace(/'/g, '%27')}'*/`;
  const end = /;?\s*$/.exec(sql);
  const at = end ? end.index : sql.length;
  // a statement that ends in a line comment gets the tag on a line of its own
  const lastLine = sql.slice(sql.lastIndexOf('\n', at - 1) + 1, at);
  return `${sql.slice(0, at)}${lastLine.includes('--') ? '\n' : ' '}${tag}${sql.slice(at)}`;
}

const LOGGED = /^(Execut(?:ing|ed) \([^)]*)\)/;
const logging = new WeakSet<Sequelize>();

/**
 * Sequelize's log line of each statement of `sequelize` says the tenant it ran for —
 * `Executing (default; tenant=7): SELECT ...` (`tenant=(none)` outside any tenant, `tenant=(withoutTenant)`
 * inside `withoutTenant`) — and the options object the `logging` function receives carries `tenant`
 * (the id, the ids, or undefined) for structured loggers.
 */
export function installTenantLogging(sequelize: Sequelize, on: () => boolean): void {
  if (logging.has(sequelize)) return;
  logging.add(sequelize);
  const target = sequelize as unknown as { log: (...args: unknown[]) => void };
  const log = target.log;
  target.log = function tenantLog(this: unknown, ...args: unknown[]) {
    const first = args[0];
    const last = args[args.length - 1];
    // what Sequelize's log() reads: the statement's options when they say `logging`, else the instance's
    const own = args.length > 1 && !!last && typeof last === 'object' && Object.hasOwn(last, 'logging');
    const logs = (own ? (last as { logging?: unknown }) : (this as { options?: { logging?: unknown } }).options)?.logging;
    if (logs && typeof first === 'string' && on() && LOGGED.test(first)) {
      const frame = currentFrame();
      args[0] = first.replace(LOGGED, `$1; tenant=${tenantLabel() ?? '(none)'})`);
      if (own) {
        args[args.length - 1] = { ...last, tenant: frame?.tenant && !frame.bypass ? tenantIdOf(frame.tenant) : undefined };
      }
    }
    return log.apply(this, args);
  };
}

/** A span, as `tenantSpanProcessor` needs it (structural: `@opentelemetry/sdk-trace-base`'s Span fits). */
export interface TenantSpan {
  setAttribute(key: string, value: string): unknown;
  readonly attributes?: Readonly<Record<string, unknown>>;
}

/** Options of `tenantSpanProcessor`. */
export interface TenantSpanProcessorOptions {
  /** The attribute's name. @default 'tenant.id' */
  attribute?: string;
  /** `'database'` (default): only spans of database calls (those with `db.system` or `db.system.name`); `'all'`: every span. */
  spans?: 'database' | 'all';
}

/** An OpenTelemetry span processor (structural: pass it to the tracer provider's `spanProcessors`). */
export interface TenantSpanProcessor {
  onStart(span: TenantSpan, parentContext?: unknown): void;
  onEnd(span: unknown): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * An OpenTelemetry span processor that puts the current tenant on each span of a database call as it
 * starts — the pg instrumentation's, the Sequelize instrumentation's, any that sets `db.system` — inside
 * the unit of work that sent it: `tenant.id = '7'` (`'1,2'` for several, `'(withoutTenant)'` in a bypass;
 * none outside any tenant).
 * @example
 * new NodeTracerProvider({ spanProcessors: [tenantSpanProcessor(), new BatchSpanProcessor(exporter)] });
 */
export function tenantSpanProcessor(options: TenantSpanProcessorOptions = {}): TenantSpanProcessor {
  checkOptions('tenantSpanProcessor', options, { attribute: 'string', spans: { oneOf: ['database', 'all'] } }, 'nothing was made');
  const attribute = options.attribute ?? 'tenant.id';
  const all = options.spans === 'all';
  return {
    onStart(span) {
      const attributes = span.attributes;
      if (!all && attributes?.['db.system'] === undefined && attributes?.['db.system.name'] === undefined) return;
      const label = tenantLabel();
      if (label !== undefined) span.setAttribute(attribute, label);
    },
    onEnd() {},
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };
}
