import type { ModelAttributeColumnOptions, ModelStatic, Model as SequelizeModel } from 'sequelize';
import { MultitenantError } from './errors';

// biome-ignore lint/suspicious/noExplicitAny: a model of any attribute shape
export type AnyModelStatic = ModelStatic<SequelizeModel<any, any>>;

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

function resolve(model: AnyModelStatic): TenantMeta | undefined {
  const m = internals(model);
  const tenantKey = m.options?.tenantKey;
  if (tenantKey === undefined || tenantKey === null) return undefined;
  if (typeof tenantKey !== 'string' || tenantKey === '') {
    throw new MultitenantError(`tenantKey must be a non-empty string, got ${String(tenantKey)}`, { model: m.name });
  }
  let attribute: string | undefined;
  if (m.rawAttributes[tenantKey]) attribute = tenantKey;
  else {
    for (const [name, def] of Object.entries(m.rawAttributes)) {
      if ((def.field ?? name) === tenantKey) {
        attribute = name;
        break;
      }
    }
  }
  if (attribute === undefined) {
    throw new MultitenantError(
      `tenantKey '${tenantKey}' names no attribute or column of this model (attributes: ${Object.keys(m.rawAttributes).join(', ')})`,
      { model: m.name },
    );
  }
  const def = m.rawAttributes[attribute];
  const type = def?.type as { key?: string; constructor?: { key?: string } } | undefined;
  const pk = m.primaryKeyAttributes;
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
