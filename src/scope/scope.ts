import { Op, type WhereOptions } from 'sequelize';
import { currentFrame } from '../context';
import { MissingTenantError, type RefusalDetails, TenantMismatchError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import type { PluginState } from '../state';
import { assertFits, columnKey, normalizeTenant, type Tenant, tenantIdOf, tenantIncludes, tenantWithin } from '../tenant';
import { assertPlainKeys, canonicalCondition, closed, flatCopy, isPlainValue } from './closed';

/**
 * How an operation touches rows: reads and writes of existing rows are filtered; inserts are stamped;
 * an upsert is an insert that may update an existing row (never exempt from strict mode).
 */
export type Access = 'read' | 'write' | 'insert' | 'upsert';

/** Marks the options of a findOrCreate on their way to the INSERT (methods.ts, writes.ts). */
export const IN_FIND_OR_CREATE: unique symbol = Symbol('sequelize-multitenant:findOrCreate');

/** The tenant scope that applies to one operation on one tenant model. */
export class Scope {
  constructor(
    readonly meta: TenantMeta,
    readonly tenant: Tenant,
    readonly operation: string,
    /** False for a write in `writeOnly` mode: its values are checked, its rows not filtered. */
    readonly filters = true,
  ) {}
  /**
   * True when the instance was made with `quoteIdentifiers: false`: Sequelize then copies keys and
   * column names into the SQL unquoted, so they are raw SQL.
   */
  get rawIdentifiers(): boolean {
    const s = (this.meta.model as unknown as { sequelize?: { options?: { quoteIdentifiers?: boolean } } }).sequelize;
    return s?.options?.quoteIdentifiers === false;
  }
  /** What an error says it refused (built only when one is thrown: this is on every query's path). */
  get details(): RefusalDetails {
    return { model: this.meta.name, operation: this.operation, tenant: tenantIdOf(this.tenant) };
  }
}

/**
 * The single resolver: which tenant (if any) scopes `operation` on `model` now.
 * Undefined for global models, inside `withoutTenant`, with no tenant in non-strict mode, and for
 * filters in `writeOnly` mode. Throws MissingTenantError in strict mode before any SQL is built.
 */
export function activeScope(
  state: PluginState,
  model: AnyModelStatic | undefined | null,
  operation: string,
  access: Access,
): Scope | undefined {
  const meta = tenantMeta(model);
  if (!meta) return undefined;
  const frame = currentFrame();
  if (frame?.bypass) return undefined;
  const tenant = frame?.tenant;
  if (!tenant) {
    if (state.options.strict && !(access === 'insert' && meta.isTenantTable)) {
      throw new MissingTenantError(
        'no tenant is set (strict mode): run it inside withTenant(...), after setCurrentTenant(...), or inside withoutTenant(...) for unscoped work',
        { model: meta.name, operation },
      );
    }
    return undefined;
  }
  let filters = true;
  if (access !== 'insert' && access !== 'upsert' && state.options.writeOnly) {
    // writeOnly adds no filters, but a write still may not move rows to, or name, another tenant
    if (access !== 'write') return undefined;
    filters = false;
  }
  const scope = new Scope(meta, tenant, operation, filters);
  assertFits(tenant, meta, scope);
  return scope;
}

/** A SQL-ready tenant value: bigints as strings, so every driver path binds them. */
export function sqlValue(id: Tenant['ids'][number]): number | string {
  return typeof id === 'bigint' ? id.toString() : id;
}

/** The value side of the tenant predicate: `7`, or `{ [Op.in]: [7, 8] }`. */
function predicateValue(scope: Scope): unknown {
  const ids = scope.tenant.ids;
  return ids.length === 1 ? sqlValue(ids[0] as Tenant['ids'][number]) : { [Op.in]: ids.map(sqlValue) };
}

/** `{ store_id: 7 }` or `{ store_id: { [Op.in]: [7, 8] } }`, keyed by column (or by attribute). */
export function tenantPredicate(scope: Scope, key: 'column' | 'attribute' = 'column'): Record<string, unknown> {
  return { [key === 'column' ? scope.meta.column : scope.meta.attribute]: predicateValue(scope) };
}

/**
 * ANDs the tenant predicate onto a where of any shape as one closed term (closed.ts). The common flat
 * object without the tenant column gets it as one more key (the SQL a hand-written filter gives, one
 * small allocation on every query's path); anything else becomes `((<where>) AND <tenant>)`, after its
 * raw SQL texts were checked to be closed terms themselves.
 */
export function scopedWhere(where: unknown, scope: Scope): WhereOptions {
  if (!scope.filters) return where as WhereOptions;
  if (where === undefined || where === null || (Array.isArray(where) && where.length === 0)) return tenantPredicate(scope);
  if (typeof where === 'object') {
    // a fresh copy, each key read once: the object Sequelize renders is the one that was checked
    const flat = flatCopy(where, scope);
    if (flat) {
      const column = scope.meta.column;
      if (!Object.hasOwn(flat, column)) {
        flat[column] = predicateValue(scope);
        return flat as WhereOptions;
      }
      // `{ id: 1, store_id: 1 }` (an instance's where on a composite key, the library's own hooks): already pinned.
      if (pinsTenant(flat[column], scope)) return flat as WhereOptions;
    }
  }
  // what is rendered is a copy of what is checked (closed.ts)
  const canonical = canonicalCondition(where, scope);
  const sealed = sealedAroundPin(canonical, scope, 0);
  if (sealed !== undefined) return sealed as WhereOptions;
  return { [Op.and]: [closed(canonical), tenantPredicate(scope)] } as WhereOptions;
}

/** A plain value, or a non-empty list of them, each one of the current tenant(s). */
export function pinsTenant(value: unknown, scope: Scope): boolean {
  const values = Array.isArray(value) ? value : [value];
  return values.length > 0 && values.every((v) => isPlainValue(v) && tenantIncludes(scope.tenant, v, scope.meta));
}

const isPlainObject = (value: unknown): value is Record<string | symbol, unknown> => {
  if (!value || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/** A copy of `where` without `omit`: its other keys. Undefined when none is left. */
function without(where: Record<string | symbol, unknown>, omit: string | symbol): Record<string | symbol, unknown> | undefined {
  let rest: Record<string | symbol, unknown> | undefined;
  for (const key of Reflect.ownKeys(where)) {
    if (key === omit) continue;
    rest ??= {};
    rest[key] = where[key];
  }
  return rest;
}

/**
 * A where that already holds the tenant predicate in AND position — `<column>: <current tenant(s)>` as a
 * key of a plain object, at its root or inside `[Op.and]` at any depth (the form the library's own
 * hooks give, also after a paranoid model's `deleted_at IS NULL` was ANDed around it) — rebuilt so
 * that every other term is one closed term ANDed with a fresh copy of that predicate: the tenant is
 * then not added a second time. Undefined when there is none (the caller adds the predicate). Called on
 * the canonical copy of the where (closed.ts): plain objects of the keys Sequelize renders, each value
 * read once already — nothing here needs copying again.
 */
function sealedAroundPin(where: unknown, scope: Scope, depth: number): unknown {
  if (depth > 8 || !isPlainObject(where)) return undefined;
  const column = scope.meta.column;
  if (Object.hasOwn(where, column)) {
    const value = where[column];
    if (pinsTenant(value, scope)) {
      const pin = { [column]: value };
      const rest = without(where, column);
      return rest ? { [Op.and]: [closed(rest), pin] } : pin;
    }
  }
  const and = where[Op.and];
  if (and === undefined) return undefined;
  const items: unknown[] = Array.isArray(and) ? and : [and];
  for (let i = 0; i < items.length; i++) {
    const sealed = sealedAroundPin(items[i], scope, depth + 1);
    if (sealed === undefined) continue;
    const terms = items.map((item, j) => (j === i ? sealed : closed(item)));
    const rest = without(where, Op.and);
    return { [Op.and]: rest ? [closed(rest), ...terms] : terms };
  }
  return undefined;
}

/** The single tenant a new row belongs to; several tenants cannot own one row. */
export function insertTenant(scope: Scope): number | string {
  if (scope.tenant.many) {
    throw new TenantMismatchError(
      'a row cannot be created under several tenants: which tenant would it belong to? Create it inside withTenant(oneTenant, ...)',
      scope.details,
    );
  }
  return sqlValue(scope.tenant.ids[0] as Tenant['ids'][number]);
}

/**
 * The tenant value a new row gets: the current tenant when `value` is empty; `value` itself when it is
 * the current tenant; another tenant's value is refused.
 */
export function tenantToWrite(scope: Scope, value: unknown): unknown {
  const tenant = insertTenant(scope);
  if (value === undefined || value === null) return tenant;
  if (!tenantIncludes(scope.tenant, value, scope.meta)) {
    throw new TenantMismatchError(`refused to write ${scope.meta.attribute} = ${String(value)} under another tenant; nothing was written`, {
      ...scope.details,
      received: value,
    });
  }
  return value;
}

/**
 * Fills the tenant into a row about to be inserted, or refuses another tenant's value. `key` says
 * whether `row` is keyed by column or by attribute. Returns `row` itself when it already carries the
 * tenant, else a copy with it.
 */
export function stampRow<T extends Record<string, unknown>>(scope: Scope, row: T, key: 'column' | 'attribute'): T {
  const name = key === 'column' ? scope.meta.column : scope.meta.attribute;
  if (key === 'column') {
    assertPlainKeys(row, scope);
    for (const other of tenantKeysIn(row, scope)) {
      if (other === name) continue;
      throw new TenantMismatchError(
        `refused the tenant column spelt ${other}: write ${name} (or leave it out: it is filled in); nothing was written`,
        { ...scope.details, received: row[other] },
      );
    }
  }
  const value = row[name];
  const written = tenantToWrite(scope, value);
  return written === value ? row : { ...row, [name]: written };
}

/**
 * Removes the tenant column from an UPDATE's SET list (Citus rejects `SET store_id`, even unchanged).
 * A value other than the (single) current tenant would move rows to another tenant: refused. Returns a copy.
 */
export function withoutTenantInSet<T extends Record<string, unknown>>(scope: Scope, values: T): T {
  assertPlainKeys(values, scope);
  const keys = tenantKeysIn(values, scope);
  if (keys.length === 0) return values;
  const copy = { ...values };
  for (const key of keys) {
    const value = values[key];
    if (key !== scope.meta.column || scope.tenant.many || !tenantIncludes(scope.tenant, value, scope.meta)) {
      throw new TenantMismatchError(
        `refused to set ${scope.meta.attribute} = ${String(value)}${key !== scope.meta.column ? ` (as ${key})` : ''}: rows cannot move to another tenant; nothing was written`,
        { ...scope.details, received: value },
      );
    }
    delete copy[key];
  }
  return copy;
}

/**
 * The keys of a SET list or a row that Sequelize would send as the tenant column: the column itself, and
 * any spelling Sequelize turns into it — it strips every `"` from an identifier (`'"store_id"'`), and with
 * `quoteIdentifiers: false` PostgreSQL folds the unquoted name to lower case (`'STORE_ID'`).
 */
export function tenantKeysIn(values: object, scope: Scope): string[] {
  const column = scope.meta.column;
  const raw = scope.rawIdentifiers;
  const fold = raw ? (k: string) => k.replace(/"/g, '').toLowerCase() : (k: string) => k.replace(/"/g, '');
  const target = fold(column);
  // (on every write's path: with quoted identifiers only a key holding a `"` can fold into another name)
  return Object.keys(values).filter((k) => k === column || ((raw || k.includes('"')) && fold(k) === target));
}

/** Is `attribute` among the (mapped) attributes a query selects: `'a'` or `['column', 'a']`? */
export function selects(attributes: unknown[] | undefined, attribute: string): boolean {
  return !!attributes?.some((a) => a === attribute || (Array.isArray(a) && a[1] === attribute));
}

/** The tenant(s) an instance was read under, for instances read without their tenant column (reads.ts). */
const readUnder = new WeakMap<object, Tenant>();

/**
 * Remembers the tenant rows were read under, for the rows that do not carry their tenant column — at
 * the root of a find (one row for `plain`), in its includes at every level, or returned by an UPDATE.
 */
export function rememberReadTenant(rows: unknown, scope: Scope): void {
  for (const row of Array.isArray(rows) ? rows : [rows]) {
    if (!row || typeof row !== 'object' || !('dataValues' in row)) continue;
    const inst = row as {
      constructor: AnyModelStatic;
      dataValues: Record<string, unknown>;
      _options?: { include?: Array<{ as?: string }> };
    };
    const meta = tenantMeta(inst.constructor);
    if (meta && (inst.dataValues[meta.attribute] === undefined || inst.dataValues[meta.attribute] === null))
      readUnder.set(row, scope.tenant);
    for (const include of inst._options?.include ?? []) {
      if (include?.as) rememberReadTenant(inst.dataValues[include.as], scope);
    }
  }
}

/** Refuses an instance read, without its tenant column, under a tenant other than the current one(s). */
export function assertReadUnderScope(scope: Scope, instance: object, role = 'this'): void {
  const under = readUnder.get(instance);
  if (!under) return;
  if (!tenantWithin(under, scope.tenant, scope.meta)) {
    throw new TenantMismatchError(
      `${role} ${scope.meta.name} row was read under tenant ${tenantIdOf(under)} (without its ${scope.meta.attribute}); nothing was written`,
      { ...scope.details, received: tenantIdOf(under) },
    );
  }
}

/** The tenant value an instance holds: as loaded (`_previousDataValues`), else as set. */
export function instanceTenantValue(instance: unknown, attribute: string): unknown {
  const inst = instance as { _previousDataValues?: Record<string, unknown>; dataValues?: Record<string, unknown> } | null;
  return inst?._previousDataValues?.[attribute] ?? inst?.dataValues?.[attribute];
}

/**
 * Under several tenants (`withTenant([1, 2])`), a write through one instance is narrowed to the tenant
 * the instance belongs to: its where (`id = 1`, a declared key without the tenant column) must not
 * reach the other tenants' rows that share the key. Refused when that tenant cannot be known.
 */
export function narrowToInstance(scope: Scope, instance: unknown, role = 'this'): Scope {
  if (!scope.tenant.many || !instance || typeof instance !== 'object') return scope;
  const { attribute } = scope.meta;
  const value = instanceTenantValue(instance, attribute);
  if (value !== undefined && value !== null) {
    return new Scope(scope.meta, normalizeTenant(value, scope.details), scope.operation);
  }
  const under = readUnder.get(instance);
  if (under && !under.many) return new Scope(scope.meta, under, scope.operation);
  throw new TenantMismatchError(
    `under several tenants, ${role} ${scope.meta.name} row's tenant is not known (it was read without ${attribute}); nothing was written`,
    scope.details,
  );
}

/**
 * Refuses to write through an instance that was loaded from another tenant, or whose tenant value was
 * changed since it was loaded. The caller then drops the (unchanged) tenant column from the SET list.
 */
export function assertInstanceInScope(scope: Scope, instance: unknown): void {
  const inst = instance as { _previousDataValues?: Record<string, unknown>; dataValues?: Record<string, unknown> } | null;
  if (!inst || typeof inst !== 'object') return;
  const attribute = scope.meta.attribute;
  const loaded = inst._previousDataValues?.[attribute];
  const now = inst.dataValues?.[attribute];
  const known = (v: unknown) => v !== undefined && v !== null;
  // (in writeOnly mode reads are not scoped, so no read tenant was remembered: rows still being backfilled)
  if (!known(loaded) && scope.filters) assertReadUnderScope(scope, inst);
  if (known(loaded) && !tenantIncludes(scope.tenant, loaded, scope.meta)) {
    throw new TenantMismatchError(`this ${scope.meta.name} row belongs to tenant ${String(loaded)}; nothing was written`, {
      ...scope.details,
      received: loaded,
    });
  }
  const moved = known(loaded)
    ? columnKey(now, scope.meta) !== columnKey(loaded, scope.meta)
    : known(now) && !tenantIncludes(scope.tenant, now, scope.meta);
  if (moved) {
    throw new TenantMismatchError(
      `refused to change ${attribute} from ${String(loaded)} to ${String(now)}: a row cannot move to another tenant; nothing was written`,
      { ...scope.details, received: now },
    );
  }
}

/**
 * Runs a wrapper's body; a refusal thrown synchronously comes back as a rejected promise, like the
 * query-interface method it wraps (which is async). Not an async function: one promise less per query.
 */
export function guarded<R>(body: () => Promise<R> | R): Promise<R> {
  try {
    return Promise.resolve(body());
  } catch (err) {
    return Promise.reject(err);
  }
}
