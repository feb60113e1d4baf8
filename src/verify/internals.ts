import { type Sequelize, Utils } from 'sequelize';
import { MultitenantError } from '../errors';

// The scoping wraps Sequelize internals that are not public API. Before anything is patched, each one is
// checked to exist and to be a function: a Sequelize release that renamed one must make multitenant()
// fail loudly, never install a library that silently leaves a path unscoped.

/** The query-interface methods every model read and write goes through (scope/reads.ts, scope/writes.ts). */
const QUERY_INTERFACE = [
  'select',
  'rawSelect',
  'insert',
  'bulkInsert',
  'upsert',
  'update',
  'bulkUpdate',
  'delete',
  'bulkDelete',
  'increment',
  'decrement',
  'createTable',
  'changeColumn',
  'normalizeAttribute',
  'removeConstraint',
] as const;
/** The query-generator methods wrapped (joins, conflicts, limited deletes) or called to build SQL. */
const QUERY_GENERATOR = [
  'generateJoin',
  'generateThroughJoin',
  '_generateSubQueryFilter',
  'insertQuery',
  'bulkInsertQuery',
  'deleteQuery',
  'whereItemsQuery',
  'quoteTable',
  'quoteIdentifier',
  '_getAliasForField',
  'attributesToSQL',
  'changeColumnQuery',
] as const;
/** Static methods of the base Model class wrapped once (scope/methods.ts, citus/schema.ts). */
const MODEL_STATIC = [
  'init',
  'bulkCreate',
  'upsert',
  'findOrCreate',
  'sync',
  'build',
  'belongsTo',
  'hasOne',
  'hasMany',
  'belongsToMany',
] as const;
/** The association methods that take the source instance first (scope/associations.ts). */
const ASSOCIATION_METHODS: Record<string, readonly string[]> = {
  HasMany: ['get', 'count', 'has', 'set', 'add', 'remove', 'create'],
  BelongsToMany: ['get', 'count', 'has', 'set', 'add', 'remove', 'create'],
  HasOne: ['get', 'set', 'create'],
  BelongsTo: ['get', 'set', 'create'],
};

type Bag = Record<string, unknown> | undefined | null;
const isFunction = (bag: Bag, name: string) => typeof bag?.[name] === 'function';

/** The installed Sequelize's version, for the error message. */
function versionOf(ctor: { version?: unknown }): string {
  return typeof ctor.version === 'string' ? ctor.version : 'unknown';
}

/**
 * Every internal multitenant() wraps or calls, as `Owner.name` strings, that is missing or not a function.
 * Exported for the tests; `assertInternals` is what multitenant() calls.
 */
export function missingInternals(sequelize: Sequelize): string[] {
  const ctor = sequelize.constructor as unknown as Record<string, unknown> & { Model?: Record<string, unknown> };
  const qi = sequelize.getQueryInterface() as unknown as Record<string, unknown> & { queryGenerator?: Record<string, unknown> };
  const missing: string[] = [];
  for (const name of QUERY_INTERFACE) if (!isFunction(qi, name)) missing.push(`QueryInterface#${name}`);
  for (const name of QUERY_GENERATOR) if (!isFunction(qi.queryGenerator, name)) missing.push(`QueryGenerator#${name}`);
  if (typeof ctor.Model !== 'function') missing.push('Sequelize.Model');
  else {
    const Model = ctor.Model as unknown as Record<string, unknown> & { prototype?: Bag };
    if (!isFunction(Model.prototype, 'save')) missing.push('Model#save');
    for (const name of MODEL_STATIC) if (!isFunction(Model, name)) missing.push(`Model.${name}`);
  }
  for (const [kind, methods] of Object.entries(ASSOCIATION_METHODS)) {
    const cls = ctor[kind] as { prototype?: Bag } | undefined;
    if (typeof cls !== 'function') missing.push(`Sequelize.${kind}`);
    else for (const name of methods) if (!isFunction((cls as { prototype?: Bag }).prototype, name)) missing.push(`${kind}#${name}`);
  }
  const Query = (sequelize as unknown as { dialect?: { Query?: { prototype?: Bag } } }).dialect?.Query;
  if (!isFunction(Query?.prototype, 'run')) missing.push('Query#run');
  if (typeof (Utils as unknown as Record<string, unknown>).SequelizeMethod !== 'function') missing.push('Utils.SequelizeMethod');
  const models = (sequelize as unknown as { modelManager?: { models?: unknown } }).modelManager?.models;
  if (!Array.isArray(models)) missing.push('Sequelize#modelManager.models');
  if (!isFunction(sequelize as unknown as Bag, 'sync')) missing.push('Sequelize#sync');
  return missing;
}

/** Throws a MultitenantError naming every missing internal and the installed Sequelize version. */
export function assertInternals(sequelize: Sequelize): void {
  const missing = missingInternals(sequelize);
  if (missing.length === 0) return;
  const version = versionOf(sequelize.constructor as unknown as { version?: unknown });
  throw new MultitenantError(
    `this Sequelize (${version}) lacks ${missing.length === 1 ? 'an internal' : 'internals'} the tenant scoping wraps: ${missing.join(', ')}. ` +
      'Nothing was installed: queries through them would run unscoped. See "Supported versions" in the README',
    { operation: 'multitenant' },
  );
}
