import type { ModelAttributeColumnOptions, ModelStatic, Model as SequelizeModel } from 'sequelize';
import { MultitenantError } from './errors';
import { nearestName } from './spelling';

/** A model class of any attribute shape (`Model` with Sequelize's own default type arguments). */
export type AnyModelStatic = ModelStatic<SequelizeModel>;

/** Per-model tenant metadata, resolved once per model (again only if its attributes change). */
export interface TenantMeta {
  readonly model: AnyModelStatic;
  /** The model name, for error messages. */
  readonly name: string;
  /** The attribute that holds the tenant (`storeId`). */
  readonly attribute: string;
  /** Its column (`store_id`): what SQL needs. */
  readonly column: string;
  /** The Sequelize type key of the column: INTEGER, BIGINT, UUID, STRING, … */
  readonly typeKey: string;
  /** True for the tenant table itself: the tenant key is its (only) primary key. */
  readonly isTenantTable: boolean;
  /** True when the primary key includes the tenant column. */
  readonly keyIncludesTenant: boolean;
}

interface Cached {
  readonly fields: object;
  readonly meta: TenantMeta | undefined;
}

const cache = new WeakMap<object, Cached>();

interface ModelInternals {
  options: { tenantKey?: string };
  rawAttributes: Record<string, ModelAttributeColumnOptions & { field?: string; fieldName?: string }>;
  fieldRawAttributesMap: object;
  primaryKeyAttributes: string[];
  name: string;
}

function internals(model: AnyModelStatic): ModelInternals {
  return model as unknown as ModelInternals;
}

/** The attribute whose name or column is `tenantKey`, if any. */
function attributeNamed(m: ModelInternals, tenantKey: string): string | undefined {
  if (m.rawAttributes[tenantKey]) return tenantKey;
  for (const [name, def] of Object.entries(m.rawAttributes)) {
    if ((def.field ?? name) === tenantKey) return name;
  }
  return undefined;
}

/**
 * The attribute or column a misspelt `tenantKey` most likely meant: the same name but for case and
 * underscores (`storeID`, `storeid` for `store_id`), or one typo away (`storId`) for names of 4+ letters.
 */
function nearName(m: ModelInternals, tenantKey: string): string | undefined {
  const names = new Set<string>();
  for (const [name, def] of Object.entries(m.rawAttributes)) names.add(name).add(def.field ?? name);
  return nearestName(names, tenantKey);
}

/**
 * Checked when a tenant model is defined (and, for models defined before, at `multitenant()`): a
 * `tenantKey` that names no attribute or column but is one typo away from one is refused at once;
 * one that names nothing yet is `'pending'` — an association defined next may add it (`belongsTo(Store,
 * { foreignKey: 'store_id' })`).
 */
export function checkTenantKeyNamed(model: AnyModelStatic): 'ok' | 'pending' {
  const m = internals(model);
  const tenantKey = m.options?.tenantKey;
  if (tenantKey === undefined || tenantKey === null) return 'ok';
  if (typeof tenantKey !== 'string' || tenantKey === '') {
    throw new MultitenantError(`tenantKey must be a non-empty string, got ${String(tenantKey)}`, { model: m.name, operation: 'define' });
  }
  if (attributeNamed(m, tenantKey) !== undefined) return 'ok';
  const near = nearName(m, tenantKey);
  if (near === undefined) return 'pending';
  throw new MultitenantError(
    `tenantKey '${tenantKey}' names no attribute or column of this model — did you mean '${near}'? (attributes: ${Object.keys(m.rawAttributes).join(', ')})`,
    { model: m.name, operation: 'define' },
  );
}

/** The message for a tenantKey that still names nothing. */
export function unnamedTenantKey(model: AnyModelStatic): string | undefined {
  const m = internals(model);
  const tenantKey = m.options?.tenantKey;
  if (typeof tenantKey !== 'string' || attributeNamed(m, tenantKey) !== undefined) return undefined;
  return `${m.name}: tenantKey '${tenantKey}' names no attribute or column (attributes: ${Object.keys(m.rawAttributes).join(', ')}): declare it, or define the association that adds it (e.g. belongsTo(Store, { foreignKey: '${tenantKey}' })); its queries fail until then`;
}

/** The name prefix of the install canary's throwaway models (verify/canary.ts). */
export const CANARY_PREFIX = 'MultitenantCanary';
/** The Sequelize type keys of every tenant column seen in this process (a host checks a request's tenant against them). */
const tenantColumnTypes = new Set<string>();
export function knownTenantColumnTypes(): ReadonlySet<string> {
  return tenantColumnTypes;
}

function resolve(model: AnyModelStatic): TenantMeta | undefined {
  const m = internals(model);
  const tenantKey = m.options?.tenantKey;
  if (tenantKey === undefined || tenantKey === null) return undefined;
  if (typeof tenantKey !== 'string' || tenantKey === '') {
    throw new MultitenantError(`tenantKey must be a non-empty string, got ${String(tenantKey)}`, { model: m.name });
  }
  const attribute = attributeNamed(m, tenantKey);
  if (attribute === undefined) {
    throw new MultitenantError(
      `tenantKey '${tenantKey}' names no attribute or column of this model (attributes: ${Object.keys(m.rawAttributes).join(', ')})`,
      { model: m.name },
    );
  }
  const def = m.rawAttributes[attribute];
  const type = def?.type as { key?: string; constructor?: { key?: string } } | undefined;
  const pk = m.primaryKeyAttributes;
  // (not the install canary's throwaway models: their INTEGER column is no column of the application's)
  if (!m.name.startsWith(CANARY_PREFIX)) tenantColumnTypes.add(String(type?.key ?? type?.constructor?.key ?? 'UNKNOWN'));
  return {
    model,
    name: m.name,
    attribute,
    column: def?.field ?? attribute,
    typeKey: String(type?.key ?? type?.constructor?.key ?? 'UNKNOWN'),
    isTenantTable: pk.length === 1 && pk[0] === attribute,
    keyIncludesTenant: pk.includes(attribute),
  };
}

/** The tenant metadata of a model, or undefined for a global (non-tenant) model. */
export function tenantMeta(model: AnyModelStatic | undefined | null): TenantMeta | undefined {
  if (!model) return undefined;
  const fields = internals(model).fieldRawAttributesMap;
  const hit = cache.get(model);
  if (hit && hit.fields === fields) return hit.meta;
  const meta = resolve(model);
  cache.set(model, { fields, meta });
  return meta;
}
