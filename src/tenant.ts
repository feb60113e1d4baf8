import type { Model as SequelizeModel } from 'sequelize';
import { InvalidTenantError, type RefusalDetails, type TenantId } from './errors';
import { type AnyModelStatic, knownTenantColumnTypes, type TenantMeta, tenantMeta } from './models';

export type { TenantId };

/** Anything accepted as a tenant: a key value, a model instance (its key is read), or an array of those. */
export type TenantInput = TenantId | SequelizeModel<object, object> | ReadonlyArray<TenantId | SequelizeModel<object, object>>;

/** A validated, normalised tenant. */
export interface Tenant {
  /** What the application passed in. */
  readonly input: TenantInput;
  /** The key values, in order, without duplicates. */
  readonly ids: readonly TenantId[];
  /** Canonical string forms of `ids`, for comparisons (7, '7' and 7n are the same tenant). */
  readonly keys: ReadonlySet<string>;
  /** True when several tenants were given (an array). */
  readonly many: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An integer as PostgreSQL's integer input reads it (PostgreSQL 15: sign, decimal digits, spaces around). */
const INTEGER = /^\s*[+-]?[0-9]+\s*$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Canonical string of a key value (as given or as read back from a row), or undefined if it is no key. */
export function canonical(value: unknown): string | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isSafeInteger(value) ? String(value) : undefined;
    case 'bigint':
      return value.toString();
    case 'string':
      // No folding ('007' vs '7', letter case): for a text column those are different tenants, and a
      // false "different" only refuses a write, while a false "same" would let one through.
      // a lone surrogate reaches PostgreSQL as U+FFFD (another tenant's string); a NUL cannot reach it at all
      return value.trim() === '' || LONE_SURROGATE.test(value) || value.includes('\u0000') ? undefined : value;
    default:
      return undefined;
  }
}

function isInstance(value: object): value is SequelizeModel {
  const ctor = (value as { constructor?: { rawAttributes?: unknown; primaryKeyAttributes?: unknown } }).constructor;
  return !!ctor && typeof ctor.rawAttributes === 'object' && Array.isArray(ctor.primaryKeyAttributes);
}

/** A real model instance (not an object that only looks like one): it can be read. */
function isReadableInstance(value: object): value is SequelizeModel {
  return (
    isInstance(value) && typeof (value as { getDataValue?: unknown }).getDataValue === 'function' && typeof value.constructor === 'function'
  );
}

function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null && isInstance(value)) return `a ${value.constructor.name} instance`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function fromInstance(instance: SequelizeModel, details: RefusalDetails): TenantId {
  const model = instance.constructor as unknown as AnyModelStatic;
  const meta = tenantMeta(model);
  const internals = model as unknown as { primaryKeyAttributes: string[] };
  const attribute = meta?.attribute ?? (internals.primaryKeyAttributes.length === 1 ? internals.primaryKeyAttributes[0] : undefined);
  if (!attribute) {
    throw new InvalidTenantError(`a ${model.name} instance cannot be a tenant: it has no tenantKey and no single primary key`, {
      ...details,
      value: instance,
    });
  }
  const value = instance.getDataValue(attribute as never) as unknown;
  if (canonical(value) === undefined) {
    throw new InvalidTenantError(`a ${model.name} instance without its key '${attribute}' (${show(value)}) cannot be a tenant`, {
      ...details,
      value: instance,
    });
  }
  return value as TenantId;
}

function one(value: unknown, details: RefusalDetails): TenantId {
  if (typeof value === 'object' && value !== null && isInstance(value)) {
    if (!isReadableInstance(value))
      throw new InvalidTenantError('an object that only looks like a model instance is no tenant', { ...details, value });
    return fromInstance(value, details);
  }
  if (canonical(value) === undefined) {
    throw new InvalidTenantError(
      `invalid tenant ${show(value)}: a tenant is a model instance, an integer, a non-empty string, a bigint, or an array of those`,
      { ...details, value },
    );
  }
  return value as TenantId;
}

/**
 * Tenants given as one key value (`withTenant(7)`, the common case) are normalised once and shared:
 * a Tenant is immutable (frozen), so every request of tenant 7 gets the same object — no allocation
 * per request, and what is derived from it (the row-level security setting) is computed once.
 */
const shared = new Map<unknown, Tenant>();
const SHARED_MAX = 10_000;

/** Validates and normalises what the application passed as a tenant; throws InvalidTenantError where it is received. */
export function normalizeTenant(input: unknown, details: RefusalDetails): Tenant {
  const kind = typeof input;
  if (kind === 'number' || kind === 'string' || kind === 'bigint') {
    const known = shared.get(input);
    if (known) return known;
    const key = canonical(input);
    if (key !== undefined) {
      const tenant: Tenant = Object.freeze({
        input: input as TenantId,
        ids: Object.freeze([input as TenantId]),
        keys: new Set([key]),
        many: false,
      });
      if (shared.size >= SHARED_MAX) shared.clear();
      shared.set(input, tenant);
      return tenant;
    }
  }
  const many = Array.isArray(input);
  const list: readonly unknown[] = many ? (input as unknown[]) : [input];
  if (list.length === 0) throw new InvalidTenantError('an empty array is no tenant', { ...details, value: input });
  const ids: TenantId[] = [];
  const keys = new Set<string>();
  for (const item of list) {
    if (Array.isArray(item)) throw new InvalidTenantError('nested arrays are no tenant', { ...details, value: input });
    const id = one(item, details);
    const key = canonical(id) as string;
    if (!keys.has(key)) {
      keys.add(key);
      ids.push(id);
    }
  }
  return { input: input as TenantInput, ids, keys, many };
}

/** The public view of a tenant's key value(s): one value, or an array when several tenants were given. */
export function tenantIdOf(tenant: Tenant): TenantId | TenantId[] {
  return tenant.many ? [...tenant.ids] : (tenant.ids[0] as TenantId);
}

const INTEGER_TYPES = new Set(['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'MEDIUMINT']);
/** The values PostgreSQL's integer columns hold (what it does not hold fails the statement, out of range). */
const INTEGER_RANGES: Record<string, readonly [bigint, bigint]> = {
  SMALLINT: [-(2n ** 15n), 2n ** 15n - 1n],
  INTEGER: [-(2n ** 31n), 2n ** 31n - 1n],
  BIGINT: [-(2n ** 63n), 2n ** 63n - 1n],
};
/** True when the id is an integer the column of this type holds. */
function fitsInteger(id: TenantId, typeKey: string): boolean {
  if (typeof id === 'string' && !INTEGER.test(id)) return false;
  const value = BigInt(typeof id === 'string' ? id.trim() : id);
  const range = INTEGER_RANGES[typeKey] ?? INTEGER_RANGES.INTEGER;
  return value >= (range as readonly [bigint, bigint])[0] && value <= (range as readonly [bigint, bigint])[1];
}
const TEXT_TYPES = new Set(['STRING', 'TEXT', 'CHAR', 'CITEXT']);

/**
 * Whether every id of the tenant fits at least one of the tenant column types seen in this process (none
 * seen yet: it may). A host refuses a request's tenant that fits none with a 400, before the request runs,
 * instead of at its first query.
 */
export function fitsSomeTenantColumn(tenant: Tenant): boolean {
  const types = knownTenantColumnTypes();
  if (types.size === 0) return true;
  return tenant.ids.every((id) =>
    [...types].some((typeKey) => {
      if (INTEGER_TYPES.has(typeKey)) return fitsInteger(id, typeKey);
      if (typeKey === 'UUID') return typeof id === 'string' && UUID.test(id);
      return true;
    }),
  );
}

/** Refuses (InvalidTenantError, 400) a tenant that fits no tenant column seen in this process: where a host or a queue receives it. */
export function assertFitsSomeTenantColumn(tenant: Tenant, details: RefusalDetails & { value?: unknown }): void {
  if (fitsSomeTenantColumn(tenant)) return;
  throw new InvalidTenantError(`tenant ${String(tenantIdOf(tenant))} fits no tenant column (${[...knownTenantColumnTypes()].join(', ')})`, {
    ...details,
    status: 400,
  });
}

/** Checks that every tenant id fits the tenant column's type (an id 'abc' for an INTEGER column is refused). */
export function assertFits(tenant: Tenant, meta: TenantMeta, refusal: { readonly details: RefusalDetails }): void {
  // (on every query's path: a tenant is checked once per column type; single-id tenants are shared objects)
  const done = fitted.get(tenant);
  if (done?.has(meta.typeKey)) return;
  for (const id of tenant.ids) {
    let ok = true;
    if (INTEGER_TYPES.has(meta.typeKey)) ok = fitsInteger(id, meta.typeKey);
    else if (meta.typeKey === 'UUID') ok = typeof id === 'string' && UUID.test(id);
    else if (TEXT_TYPES.has(meta.typeKey)) ok = true;
    if (!ok) {
      throw new InvalidTenantError(`tenant ${show(id)} does not fit ${meta.name}.${meta.attribute} (${meta.typeKey})`, {
        ...refusal.details,
        value: id,
      });
    }
  }
  if (done) done.add(meta.typeKey);
  else fitted.set(tenant, new Set([meta.typeKey]));
}
const fitted = new WeakMap<Tenant, Set<string>>();

/**
 * A key value as the tenant column reads it, for comparisons: an integer column reads '01', '+1' and
 * ' 1' as 1; a UUID column ignores letter case; a text column takes the value as written.
 */
export function columnKey(value: unknown, meta: TenantMeta): string | undefined {
  const key = canonical(value);
  if (key === undefined) return undefined;
  if (INTEGER_TYPES.has(meta.typeKey)) return INTEGER.test(key) ? BigInt(key.trim()).toString() : key;
  return meta.typeKey === 'UUID' ? key.toLowerCase() : key;
}

/** How a tenant column of `meta`'s type compares key values: as integers, as UUIDs (any letter case), or as written. */
export function columnKind(meta: Pick<TenantMeta, 'typeKey'>): 'integer' | 'uuid' | 'text' {
  return INTEGER_TYPES.has(meta.typeKey) ? 'integer' : meta.typeKey === 'UUID' ? 'uuid' : 'text';
}

/** The tenant's keys as a tenant column of `meta`'s type reads them (computed once per tenant and kind of column). */
const columnKeys = new WeakMap<Tenant, Map<string, ReadonlySet<string>>>();
function keysFor(tenant: Tenant, meta: TenantMeta): ReadonlySet<string> {
  const kind = columnKind(meta);
  if (kind === 'text') return tenant.keys;
  let byKind = columnKeys.get(tenant);
  if (!byKind) {
    byKind = new Map();
    columnKeys.set(tenant, byKind);
  }
  let keys = byKind.get(kind);
  if (!keys) {
    keys = new Set(tenant.ids.map((id) => columnKey(id, meta) as string));
    byKind.set(kind, keys);
  }
  return keys;
}

/** True when `value` (a tenant column value from a row or a write) is one of the tenant's ids, as the column reads both. */
export function tenantIncludes(tenant: Tenant, value: unknown, meta: TenantMeta): boolean {
  const given = canonical(value);
  if (given === undefined) return false;
  // (on every read's path: the value as written is the common case, and needs no reading as the column reads it)
  if (tenant.keys.has(given)) return true;
  if (!INTEGER_TYPES.has(meta.typeKey) && meta.typeKey !== 'UUID') return false;
  const key = columnKey(value, meta);
  return key !== undefined && keysFor(tenant, meta).has(key);
}

/** True when every id of `inner` is one of `outer`'s, as the tenant column of `meta` reads them. */
export function tenantWithin(inner: Tenant, outer: Tenant, meta: TenantMeta): boolean {
  const keys = keysFor(outer, meta);
  for (const key of keysFor(inner, meta)) if (!keys.has(key)) return false;
  return true;
}
