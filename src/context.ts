/// <reference types="node" preserve="true" />
// The Node.js types (node:async_hooks, node:http) for applications whose tsconfig lists no `types` (TypeScript 7 loads none by default).
import { AsyncLocalStorage } from 'node:async_hooks';
import { MultitenantError } from './errors';
import { normalizeTenant, type Tenant, type TenantId, type TenantInput, tenantIdOf } from './tenant';

/**
 * What the context holds for one unit of work (a request, a job, a `withTenant` block). Every unit of work
 * gets a frame of its own; `setCurrentTenant` writes into the innermost one, so what it sets ends with
 * that unit of work. Nothing is ever entered into a context that outlives it.
 */
export interface Frame {
  tenant: Tenant | undefined;
  /** True inside `withoutTenant`: queries run unscoped, also in strict mode. */
  bypass: boolean;
}

/**
 * The part of a cls-hooked namespace this library uses (`createNamespace('app')` returns one).
 * Structural, so that cls-hooked stays an optional dependency.
 */
export interface ClsNamespace {
  readonly name?: string;
  readonly active: unknown;
  get(key: string): unknown;
  set<T>(key: string, value: T): T;
  runAndReturn<T>(fn: (...args: unknown[]) => T): T;
  createContext(): unknown;
  enter(context: unknown): void;
}

interface Backend {
  get(): Frame | undefined;
  run<T>(frame: Frame, fn: () => T): T;
}

const als = new AsyncLocalStorage<Frame>();
const alsBackend: Backend = {
  get: () => als.getStore(),
  run: (frame, fn) => als.run(frame, fn),
};

const KEY = 'sequelize-multitenant:frame';
const clsBackends = new WeakMap<ClsNamespace, Backend>();

function clsBackend(ns: ClsNamespace): Backend {
  let backend = clsBackends.get(ns);
  if (!backend) {
    backend = {
      get: () => (ns.active ? (ns.get(KEY) as Frame | undefined) : undefined),
      run: (frame, fn) =>
        ns.runAndReturn(() => {
          ns.set(KEY, frame);
          return fn();
        }),
    };
    clsBackends.set(ns, backend);
  }
  return backend;
}

let configured: ClsNamespace | undefined;
/** Sequelize constructors seen by multitenant(): `Sequelize.useCLS(ns)` stores the namespace on them. */
const sequelizeClasses: Array<{ _cls?: ClsNamespace | null }> = [];

/** Uses `ns` for the tenant context of the whole process (from `multitenant(..., { namespace })`). */
export function configureNamespace(ns: ClsNamespace | undefined): void {
  if (ns && configured && ns !== configured) {
    throw new MultitenantError(
      `another cls-hooked namespace (${configured.name ?? 'unnamed'}) already holds the tenant context; one process uses one namespace`,
      { operation: 'multitenant' },
    );
  }
  if (ns) configured = ns;
}

/** Benchmarks only (not exported from the package): switch the backend between runs in one process. */
export function switchNamespaceForBenchmarks(ns: ClsNamespace | undefined): void {
  configured = ns;
}

/** Remembers a Sequelize class so that a later `Sequelize.useCLS(ns)` is followed. */
export function watchSequelizeClass(ctor: { _cls?: ClsNamespace | null }): void {
  if (!sequelizeClasses.includes(ctor)) sequelizeClasses.push(ctor);
}

// On every query's path: no allocation here (an indexed loop over the one or two Sequelize classes).
function backend(): Backend {
  if (configured) return clsBackend(configured);
  for (let i = 0; i < sequelizeClasses.length; i++) {
    const ns = sequelizeClasses[i]?._cls;
    if (ns) return clsBackend(ns);
  }
  return alsBackend;
}

/** Which store holds the tenant now: 'AsyncLocalStorage' or the cls-hooked namespace's name. */
export function contextBackendName(): string {
  const b = backend();
  if (b === alsBackend) return 'AsyncLocalStorage';
  const ns = configured ?? [...sequelizeClasses].find((c) => c._cls)?._cls;
  return `cls-hooked:${ns?.name ?? 'unnamed'}`;
}

/** Every store a frame was ever put in: the backend can change while units of work are running. */
const used: Backend[] = [];

/**
 * The frame in force for the calling async flow (internal). The current store first; then the others
 * frames were put in, so that a `Sequelize.useCLS(ns)` called while a block runs on another store
 * does not make the block's tenant disappear.
 */
export function currentFrame(): Frame | undefined {
  const current = backend();
  const frame = current.get();
  if (frame || used.length === 0 || (used.length === 1 && used[0] === current)) return frame;
  for (let i = used.length - 1; i >= 0; i--) {
    const other = used[i] as Backend;
    if (other === current) continue;
    const found = other.get();
    if (found) return found;
  }
  return undefined;
}

/** Runs `fn` with `frame` (internal; the middleware uses it). */
export function runInFrame<T>(frame: Frame, fn: () => T): T {
  const current = backend();
  if (!used.includes(current)) used.push(current);
  return current.run(frame, fn);
}

type Stepper = { next(...a: unknown[]): unknown; return?(...a: unknown[]): unknown; throw?(...a: unknown[]): unknown };

/**
 * A generator (sync or async) or another iterator returned by a block runs its body when it is iterated,
 * usually after the block has returned: each step is run in the block's frame.
 */
function bindIterator<T>(frame: Frame, result: T): T {
  if (!result || typeof result !== 'object' || typeof (result as unknown as Stepper).next !== 'function') return result;
  const isAsync = Symbol.asyncIterator in result;
  if (!isAsync && !(Symbol.iterator in result)) return result;
  const inner = result as unknown as Stepper;
  const step =
    (method: 'next' | 'return' | 'throw') =>
    (...args: unknown[]) =>
      runInFrame(frame, () => (inner[method] as (...a: unknown[]) => unknown).apply(inner, args));
  const bound: Record<string | symbol, unknown> = { next: step('next') };
  if (typeof inner.return === 'function') bound.return = step('return');
  if (typeof inner.throw === 'function') bound.throw = step('throw');
  bound[isAsync ? Symbol.asyncIterator : Symbol.iterator] = () => bound;
  return bound as T;
}

/** A block (withTenant, withoutTenant, withTenantContext): `fn` in a frame of its own, an iterator it returns bound to it. */
function runBlock<T>(frame: Frame, fn: () => T): T {
  return bindIterator(frame, runInFrame(frame, fn));
}

/**
 * Runs `fn` with `tenant` as the current tenant and returns what `fn` returns (a promise stays a promise;
 * a generator — or an iterator with `Symbol.iterator` / `Symbol.asyncIterator` — runs each of its steps
 * with `tenant`, wherever it is iterated).
 * The previous tenant is back afterwards, also when `fn` throws.
 * @example
 * const products = await withTenant(store, () => Product.findAll());
 * await withTenant([1, 2], async () => Product.count()); // several tenants: WHERE store_id IN (1, 2)
 */
export function withTenant<T>(tenant: TenantInput, fn: () => T): T {
  return runBlock({ tenant: normalizeTenant(tenant, { operation: 'withTenant' }), bypass: false }, fn);
}

/**
 * Runs `fn` with no tenant and no scoping, also in strict mode: for admin tasks, jobs and migrations.
 * @example
 * const all = await withoutTenant(() => Product.count()); // every tenant's rows
 */
export function withoutTenant<T>(fn: () => T): T {
  return runBlock({ tenant: undefined, bypass: true }, fn);
}

/**
 * Runs `fn` as a unit of work of its own with no tenant yet: `setCurrentTenant` inside it sets the tenant
 * for the rest of this unit of work (and what it starts), and for nothing outside it. For a job, a message
 * handler or a script; web requests get theirs from `tenantMiddleware`.
 * @example
 * queue.process((job) => withTenantContext(async () => {
 *   setCurrentTenant(job.data.storeId);
 *   await Product.findAll(); // WHERE store_id = job.data.storeId
 * }));
 */
export function withTenantContext<T>(fn: () => T): T {
  return runBlock({ tenant: undefined, bypass: false }, fn);
}

function innermostFrame(operation: string): Frame {
  const frame = currentFrame();
  if (!frame) {
    throw new MultitenantError(
      'no unit of work to set the tenant in: call it inside tenantMiddleware() (a request), withTenantContext(fn) (a job, a script) or withTenant(tenant, fn); a tenant set outside them would outlive the work it was set for',
      { operation },
    );
  }
  return frame;
}

/**
 * Sets the current tenant for the rest of the current unit of work: the request (`tenantMiddleware`),
 * the `withTenantContext`, `withTenant` or `withoutTenant` block it runs in. Outside any of them it throws
 * a `MultitenantError`: a tenant set there would be seen by whatever runs next in that async context.
 * @example
 * app.use(tenantMiddleware());
 * app.use((req, res, next) => { setCurrentTenant(req.user.storeId); next(); });
 */
export function setCurrentTenant(tenant: TenantInput): void {
  const normalized = normalizeTenant(tenant, { operation: 'setCurrentTenant' });
  const frame = innermostFrame('setCurrentTenant');
  frame.tenant = normalized;
  frame.bypass = false;
}

/**
 * Removes the current tenant for the rest of the current unit of work (no-op outside any).
 * @example
 * unsetCurrentTenant();
 * getCurrentTenant(); // undefined
 */
export function unsetCurrentTenant(): void {
  const frame = currentFrame();
  if (!frame) return;
  frame.tenant = undefined;
  frame.bypass = false;
}

/**
 * The tenant as it was set (an instance, an id, or an array), or undefined.
 * @example
 * withTenant(store, () => getCurrentTenant() === store); // true
 */
export function getCurrentTenant(): TenantInput | undefined {
  return currentFrame()?.tenant?.input;
}

/**
 * The current tenant's key value (`7`, `'7'`, `7n`), an array of them for several tenants, or undefined.
 * @example
 * withTenant(store, () => getCurrentTenantId()); // store.id
 */
export function getCurrentTenantId(): TenantId | TenantId[] | undefined {
  const tenant = currentFrame()?.tenant;
  return tenant ? tenantIdOf(tenant) : undefined;
}

/**
 * Binds `fn` to the unit of work it is bound in: wherever and whenever it is called later — by an
 * old-style event emitter, a pool, a timer or a callback queue created earlier — it runs with that
 * unit of work's tenant (as it is when it runs), and never with the caller's. Bound outside any unit of
 * work, each call runs as a unit of work of its own with no tenant.
 * @example
 * withTenant(store, () => legacyEmitter.on('done', bindTenant(() => Product.count()))); // counts store's rows
 */
export function bindTenant<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  if (typeof fn !== 'function') throw new TypeError('bindTenant(fn): fn must be a function');
  const frame = currentFrame();
  return function boundToTenant(this: unknown, ...args: A): R {
    // bound outside any unit of work: each call is one of its own, with no tenant
    return runInFrame(frame ?? { tenant: undefined, bypass: false }, () => fn.apply(this, args));
  };
}

const schemaWork = new AsyncLocalStorage<true>();

/**
 * Runs the library's own schema work — a sync, a catalog read, a migration helper's DDL — whose
 * statements read and change the schema, not tenants' rows (row-level security's first-use check lets
 * them through: rls/enforced.ts). Internal.
 */
export function runSchemaWork<T>(fn: () => T): T {
  return schemaWork.run(true, fn);
}

/** True inside `runSchemaWork`. */
export function inSchemaWork(): boolean {
  return schemaWork.getStore() === true;
}
