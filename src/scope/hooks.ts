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
}
