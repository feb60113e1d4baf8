import { Op } from 'sequelize';
import type { AnyModelStatic } from '../models';
import type { PluginState } from '../state';
import type { Tenant } from '../tenant';
import { type Access, activeScope, pinsTenant, type Scope, sqlValue } from './scope';

// The tenant predicate made visible in `options.where` to the application's own hooks and to plugins
// keyed on find options (a query cache keyed on the where must not share an entry between tenants).
// These hooks are a courtesy, not the guarantee: the query-interface layer (reads.ts, writes.ts) scopes
// every statement whether they ran or not (`hooks: false`, includes, a later hook that rewrites the
// where), and recognises the predicate they added so that the SQL carries it once (scope.ts).

/** The name the library's hooks carry on each model (`Model.removeHook(type, name)` finds them). */
export const HOOK_NAME = 'sequelize-multitenant';

interface HookedOptions {
  where?: unknown;
}

type HookEntry = ((...args: never[]) => unknown) | { name: string; fn: (...args: never[]) => unknown };

interface HookedModel {
  options: { tenantKey?: unknown; hooks?: Record<string, HookEntry[] | undefined> };
}

/**
 * Which hooks, for which operation (the name errors give, as the query-interface layer does), and
 * whether Sequelize has mapped the where to column names before the hook runs (destroy and restore do).
 */
const HOOKS: ReadonlyArray<readonly [string, string, Access, 'attribute' | 'column']> = [
  ['beforeFind', 'find', 'read', 'attribute'],
  ['beforeCount', 'aggregate', 'read', 'attribute'],
  ['beforeBulkUpdate', 'update', 'write', 'attribute'],
  ['beforeBulkDestroy', 'destroy', 'write', 'column'],
  ['beforeBulkRestore', 'restore', 'write', 'column'],
];

const isEmpty = (where: unknown): boolean =>
  where === undefined ||
  where === null ||
  (Array.isArray(where) && where.length === 0) ||
  (typeof where === 'object' && Object.getPrototypeOf(where) === Object.prototype && Reflect.ownKeys(where).length === 0);

/**
 * The where an application hook sees: `{ ...where, storeId: 7 }` when the tenant can be one more plain
 * key (visible to `JSON.stringify` too), the where itself when it already pins the current tenant, else
 * `{ [Op.and]: [where, { storeId: 7 }] }`. Several tenants: `storeId: [7, 8]`.
 */
export function visibleWhere(where: unknown, scope: Scope, key: 'attribute' | 'column'): unknown {
  const { attribute, column } = scope.meta;
  const name = key === 'column' ? column : attribute;
  const ids = scope.tenant.ids.map((id: Tenant['ids'][number]) => sqlValue(id));
  const pin = { [name]: ids.length === 1 ? ids[0] : ids };
  if (isEmpty(where)) return pin;
  if (typeof where === 'object' && where !== null && Object.getPrototypeOf(where) === Object.prototype) {
    const w = where as Record<string, unknown>;
    const other = name === column ? attribute : column;
    if (!Object.hasOwn(w, name) && !Object.hasOwn(w, other)) return Object.assign({}, w, pin);
    if ((Object.hasOwn(w, name) && pinsTenant(w[name], scope)) || (Object.hasOwn(w, other) && pinsTenant(w[other], scope))) return where;
  }
  return { [Op.and]: [where, pin] };
}

/**
 * Puts the library's hooks first among a tenant model's own hooks (Sequelize runs a model's hooks,
 * then the universal `sequelize.addHook` ones), so that every hook of the application — `Model.addHook`,
 * `hooks` in `init`/`define`, decorators, universal hooks — sees the tenant. Once per model.
 */
export function addTenantHooks(model: AnyModelStatic, state: PluginState): void {
  const m = model as unknown as HookedModel;
  if (m.options.tenantKey === undefined || m.options.tenantKey === null) return;
  m.options.hooks ??= {};
  const hooks = m.options.hooks;
  for (const [type, operation, access, key] of HOOKS) {
    const list = hooks[type] ?? [];
    if (list.some((h) => typeof h === 'object' && h.name === HOOK_NAME)) continue;
    const fn = (options: HookedOptions) => {
      if (!options || typeof options !== 'object') return;
      const scope = activeScope(state, model, operation, access);
      if (scope?.filters) options.where = visibleWhere(options.where, scope, key);
    };
    hooks[type] = [{ name: HOOK_NAME, fn: fn as (...args: never[]) => unknown }, ...list];
  }
  skipWhenAlone(model);
}

interface Hookable {
  options: { hooks?: Record<string, HookEntry[] | undefined> };
  sequelize?: { options?: { hooks?: Record<string, HookEntry[] | undefined> } };
  runHooks(this: Hookable, hooks: unknown, ...args: unknown[]): Promise<void>;
}

/** The hook types the library adds a hook of its own to (HOOKS): looked up on every runHooks call. */
const OUR_TYPES: ReadonlySet<unknown> = new Set(HOOKS.map(([type]) => type));
const isOurType = (type: unknown): type is string => OUR_TYPES.has(type);
const DONE: Promise<void> = Promise.resolve();

/** True when the library's hook is the only one of `type` that would run: the model's only hook, and no universal one. */
function ourHookAlone(model: Hookable, type: string): boolean {
  const own = model.options.hooks?.[type];
  if (own?.length !== 1) return false;
  const only = own[0];
  if (typeof only !== 'object' || only.name !== HOOK_NAME) return false;
  const universal = model.sequelize?.options?.hooks?.[type];
  return !universal || universal.length === 0;
}

/**
 * The library's hooks only make the tenant visible to the application's hooks; the query-interface layer
 * scopes the statement whether they ran or not. When no other hook of that type would run (none on the
 * model, no universal one: looked up at each call, so a hook added later is seen), running ours would
 * show the tenant to no one and cost a hook run (an await, Sequelize's debug lines) on every query:
 * `runHooks` then resolves at once. Any other call goes to the `runHooks` the model inherits (looked up
 * at each call, so a later patch of Sequelize's is followed).
 */
function skipWhenAlone(model: AnyModelStatic): void {
  const m = model as unknown as Hookable;
  if (Object.hasOwn(m, 'runHooks')) return;
  const parent = Object.getPrototypeOf(m) as Hookable;
  Object.defineProperty(m, 'runHooks', {
    configurable: true,
    writable: true,
    value: function runHooks(this: Hookable, hooks: unknown): Promise<void> {
      if (isOurType(hooks) && ourHookAlone(this, hooks)) return DONE;
      // (every hook run of the model passes here: its arguments as they came, without a copy)
      // biome-ignore lint/complexity/noArguments: forwards any number of hook arguments without allocating
      return parent.runHooks.apply(this, arguments as unknown as [unknown, ...unknown[]]);
    },
  });
}
