// The bottom of the tree: every room throws these, and this file imports nothing of the library.

/** A tenant key value: what the tenant column holds (tenant.ts builds and checks them; errors name them). */
export type TenantId = number | string | bigint;

/** What an error refused: the model, the operation, and the tenant(s) in force. */
export interface RefusalDetails {
  /** The model name (`Product`), or undefined when no model was involved. */
  model?: string;
  /** The operation that was refused (`create`, `update`, `find`, `withTenant`, …). */
  operation?: string;
  /** The current tenant id(s) at the time of the refusal, if any. */
  tenant?: TenantId | TenantId[];
  /** The HTTP status a host answers with, when it is not the class's (a host's own refusals set it). */
  status?: number;
}

function describeTenant(tenant: TenantId | TenantId[] | undefined): string {
  if (tenant === undefined) return 'none';
  const show = (v: TenantId) => (typeof v === 'bigint' ? `${v}n` : JSON.stringify(v));
  return Array.isArray(tenant) ? `[${tenant.map(show).join(', ')}]` : show(tenant);
}

/**
 * Base class of every error this library throws.
 * @example
 * try { await Product.create({ name: 'x', storeId: 2 }); }
 * catch (e) { if (e instanceof MultitenantError) console.log(e.model, e.operation, e.tenant); }
 */
export class MultitenantError extends Error {
  /**
   * The HTTP status of this class of refusal (docs/reference.md, "Errors and HTTP statuses"): 500, a
   * refusal that only a bug of the application's code can cause.
   */
  static readonly status: number = 500;
  readonly model: string | undefined;
  readonly operation: string | undefined;
  readonly tenant: TenantId | TenantId[] | undefined;
  /** The HTTP status a host answers with: the class's, or the one the refusal was made with (a host's: 400, 401). */
  readonly status: number;
  /** The same as `status`, under the name Fastify and Node's http read. */
  readonly statusCode: number;
  /** Whether the message may be shown to the client (Koa's and http-errors' convention): true below 500. */
  readonly expose: boolean;

  constructor(message: string, details: RefusalDetails = {}) {
    const where = [details.model, details.operation].filter(Boolean).join('.');
    super(`${where ? `${where}: ` : ''}${message} (current tenant: ${describeTenant(details.tenant)})`);
    this.name = new.target.name;
    this.model = details.model;
    this.operation = details.operation;
    this.tenant = details.tenant;
    this.status = details.status ?? (new.target as typeof MultitenantError).status;
    this.statusCode = this.status;
    this.expose = this.status < 500;
  }
}

/**
 * Thrown in `strict` mode when a tenant model is queried with no tenant set and outside `withoutTenant`.
 * No SQL is sent. HTTP status 500 there (a route that reads tenant data without a tenant is a bug of the
 * route); 401 when a host refuses a request that resolved to no tenant (`required`, `@RequireTenant`).
 * @example
 * multitenant(sequelize, { strict: true });
 * await Product.findAll(); // throws MissingTenantError
 */
export class MissingTenantError extends MultitenantError {}

/**
 * Thrown when a write names another tenant than the current one (an explicit `storeId`, a change
 * of a row's tenant, an instance loaded under another tenant, a create under several tenants,
 * an upsert whose conflict target lacks the tenant column). Nothing is written. HTTP status 403.
 * @example
 * await withTenant(1, () => Product.create({ name: 'x', storeId: 2 })); // throws TenantMismatchError
 */
export class TenantMismatchError extends MultitenantError {
  /** 403: the request asked to write another tenant's row or value. */
  static override readonly status: number = 403;
  /** The tenant value the refused write carried, when there was one. */
  readonly received: unknown;
  constructor(message: string, details: RefusalDetails & { received?: unknown } = {}) {
    super(message, details);
    this.received = details.received;
  }
}

/**
 * Thrown where a tenant value is received that cannot scope a query: `undefined`, `null`, `NaN`,
 * `{}`, `[]`, an instance without its key, or a value of the wrong type for the tenant column. HTTP status 400.
 * @example
 * setCurrentTenant(undefined); // throws InvalidTenantError
 */
export class InvalidTenantError extends MultitenantError {
  /** 400: a tenant value comes from the request (a header, a parameter, a token's claim) in nearly every app. */
  static override readonly status: number = 400;
  /** The value that was refused. */
  readonly value: unknown;
  constructor(message: string, details: RefusalDetails & { value?: unknown } = {}) {
    super(message, details);
    this.value = details.value;
  }
}

/**
 * Thrown by the auditor (`audit: 'throw'`) before a statement runs that reads or writes a tenant table
 * without constraining it to the current tenant — ORM-built or raw SQL alike.
 * @example
 * multitenant(sequelize, { audit: 'throw' });
 * await withTenant(1, () => sequelize.query('SELECT * FROM products')); // throws UnscopedQueryError
 */
export class UnscopedQueryError extends MultitenantError {
  /** The tenant table that was not constrained (`products`, or `schema.products`). */
  readonly table: string;
  /** The statement that was refused. */
  readonly sql: string;
  constructor(message: string, details: RefusalDetails & { table: string; sql: string }) {
    super(message, details);
    this.table = details.table;
    this.sql = details.sql;
  }
}

/**
 * Thrown before any SQL is sent when a condition of a tenant-scoped query carries raw SQL (a `literal`,
 * an `fn` name, a `cast` type, a `where` comparator) that is not one closed term: unbalanced parentheses,
 * an unterminated quote, a comment or a `;`. ANDed with the tenant predicate it could widen the query.
 * @example
 * await withTenant(1, () => Product.findAll({ where: sequelize.literal('true) OR (true') })); // throws UnsafeConditionError
 */
export class UnsafeConditionError extends MultitenantError {
  /** The raw SQL text that was refused. */
  readonly fragment: string;
  constructor(message: string, details: RefusalDetails & { fragment: string }) {
    super(message, details);
    this.fragment = details.fragment;
  }
}

/**
 * Thrown when a tenant's export, delete, import or copy is stopped by its `signal` (the CLI: Ctrl-C).
 * `done` says what was finished: a delete keeps the batches it committed (run it again to finish); an
 * export is incomplete (no manifest); an import or a copy keeps nothing.
 * @example
 * const stop = new AbortController();
 * await deleteTenant(sequelize, 7, { confirm: 7, signal: stop.signal }); // stop.abort() → LifecycleInterruptedError
 */
export class LifecycleInterruptedError extends MultitenantError {
  /** Rows finished per table before the stop (deleted, exported; an import's or a copy's were rolled back). */
  readonly done: ReadonlyArray<{ readonly table: string; readonly rows: number }>;
  constructor(message: string, details: RefusalDetails & { done: ReadonlyArray<{ table: string; rows: number }> }) {
    super(message, details);
    this.done = details.done;
  }
}
