import type { PluginState } from '../state';
import { activeScope, tenantToWrite } from './scope';

// Writes that send several statements — a create with nested includes (parent, children, through rows),
// a belongsToMany set (DELETE old links, INSERT new ones, UPDATE changed ones) — are checked whole before
// the first statement: a refusal then means that nothing was written.

type Row = Record<string, unknown>;
interface InstanceLike {
  constructor: Parameters<typeof activeScope>[1];
  dataValues: Row;
  _options?: { include?: IncludeLike[] };
  [key: string]: unknown;
}
interface IncludeLike {
  as: string;
  association?: { through?: { model: Parameters<typeof activeScope>[1] & { name: string } } };
}

/** The tenant value a row of `model` carries, under its attribute or its column name. */
function tenantValue(state: PluginState, model: Parameters<typeof activeScope>[1], row: Row, operation: string): void {
  const scope = activeScope(state, model, operation, 'insert');
  if (!scope) return;
  const { attribute, column } = scope.meta;
  tenantToWrite(scope, row[attribute] ?? row[column]);
}

function isInstance(value: unknown): value is InstanceLike {
  return !!value && typeof value === 'object' && 'dataValues' in value;
}

/**
 * A new instance and every included instance below it (and the through values a belongsToMany child
 * carries): each row's tenant must be empty or the current tenant, and there must be one current tenant.
 */
export function assertCreateTree(state: PluginState, instance: InstanceLike, operation: string, seen = new Set<object>()): void {
  if (seen.has(instance)) return;
  seen.add(instance);
  tenantValue(state, instance.constructor, instance.dataValues, operation);
  for (const include of instance._options?.include ?? []) {
    const value = instance.dataValues[include.as] ?? instance[include.as];
    for (const child of Array.isArray(value) ? value : [value]) {
      if (!isInstance(child)) continue;
      assertCreateTree(state, child, operation, seen);
      const through = include.association?.through?.model;
      const values = through && child[through.name];
      if (through && values && typeof values === 'object' && !isInstance(values)) tenantValue(state, through, values as Row, operation);
    }
  }
}

/**
 * belongsToMany set/add/create: the through values given in `options.through` and on each target
 * (`target.ProductTag = { ... }`) are checked before the links are touched.
 */
export function assertThroughValues(
  state: PluginState,
  through: Parameters<typeof activeScope>[1] & { name: string },
  options: unknown,
  targets: unknown,
  operation: string,
): void {
  const given = (options as { through?: unknown } | undefined)?.through;
  if (given && typeof given === 'object') tenantValue(state, through, given as Row, operation);
  for (const target of Array.isArray(targets) ? targets : [targets]) {
    if (!target || typeof target !== 'object') continue;
    const values = (target as Row)[through.name];
    if (values && typeof values === 'object' && !isInstance(values)) tenantValue(state, through, values as Row, operation);
  }
}
