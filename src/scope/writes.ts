import { type Sequelize, UniqueConstraintError } from 'sequelize';
import { MultitenantError, TenantMismatchError } from '../errors';
import type { AnyModelStatic } from '../models';
import type { PluginState } from '../state';
import { assertPlainKeys } from './closed';
import {
  activeScope,
  assertInstanceInScope,
  guarded,
  IN_FIND_OR_CREATE,
  narrowToInstance,
  rememberReadTenant,
  type Scope,
  scopedWhere,
  stampRow,
  tenantKeysIn,
  tenantPredicate,
  withoutTenantInSet,
} from './scope';
import { scopingModel } from './tables';
import { assertTruncateStaysGlobal } from './truncate';

type Row = Record<string, unknown>;
type Options = Record<string, unknown> & { where?: unknown; model?: AnyModelStatic; instance?: unknown };
type Instance = { constructor: AnyModelStatic; dataValues: Row; _previousDataValues: Row };

/** The query-interface methods every model write and read goes through (Sequelize v6, all dialects). */
export interface QueryInterfaceInternals {
  sequelize: Sequelize;
  queryGenerator: QueryGeneratorInternals;
  select(model: AnyModelStatic, tableName: unknown, options: Options): Promise<unknown>;
  rawSelect(tableName: unknown, options: Options, attributeSelector: string, model?: AnyModelStatic): Promise<unknown>;
  insert(instance: Instance | null, tableName: unknown, values: Row, options: Options): Promise<unknown>;
  bulkInsert(tableName: unknown, records: Row[], options: Options, attributes?: unknown): Promise<unknown>;
  upsert(tableName: unknown, insertValues: Row, updateValues: Row, where: unknown, options: Options): Promise<unknown>;
  update(instance: Instance, tableName: unknown, values: Row, where: unknown, options: Options): Promise<unknown>;
  bulkUpdate(tableName: unknown, values: Row, where: unknown, options: Options, attributes?: unknown): Promise<unknown>;
  delete(instance: Instance, tableName: unknown, where: unknown, options: Options): Promise<unknown>;
  bulkDelete(tableName: unknown, where: unknown, options: Options, model?: AnyModelStatic): Promise<unknown>;
  increment(model: AnyModelStatic, tableName: unknown, where: unknown, amounts: Row, extra: Row, options: Options): Promise<unknown>;
  decrement(model: AnyModelStatic, tableName: unknown, where: unknown, amounts: Row, extra: Row, options: Options): Promise<unknown>;
}

export interface QueryGeneratorInternals {
  quoteTable(table: unknown): string;
  whereItemsQuery(where: unknown, options: { model?: AnyModelStatic }): string;
  deleteQuery(table: unknown, where: unknown, options?: Options & { limit?: unknown }, model?: AnyModelStatic): string;
  insertQuery(table: unknown, values: Row, attributes: unknown, options?: Options): unknown;
  bulkInsertQuery(table: unknown, rows: Row[], options?: Options, attributes?: unknown): unknown;
}

/**
 * An ON CONFLICT ... DO UPDATE whose conflict target lacks the tenant column lets one tenant take over
 * another's row with the same key: refused, saying which key to add. DO NOTHING is harmless.
 * Also keeps the tenant column out of DO UPDATE SET. Runs where Sequelize has settled the keys.
 */
function checkConflictTarget(scope: Scope, options: Options, operation: string): Options {
  const update = options.updateOnDuplicate as string[] | undefined;
  if (!Array.isArray(update) || update.length === 0) return options;
  const keys = (options.upsertKeys as string[] | undefined) ?? [];
  const { column, attribute, name } = scope.meta;
  if (!keys.includes(column)) {
    throw new TenantMismatchError(
      `ON CONFLICT (${keys.join(', ')}) does not include the tenant column ${column}: a row of another tenant with the same key would be overwritten. ` +
        `Give ${name} a primary key or unique key that includes ${column} (e.g. (${[column, ...keys.filter((k) => k !== column)].join(', ')})) ` +
        `and pass ${operation === 'upsert' ? 'conflictFields' : 'conflictAttributes'}: ['${attribute}', ...]; nothing was written`,
      { ...scope.details, operation },
    );
  }
  return { ...options, updateOnDuplicate: update.filter((c) => c !== column) };
}

/** Rows an UPDATE ... RETURNING gave back, with the tenant they were written under remembered (scope.ts). */
function remembered<R>(rows: R, scope: Scope): R {
  rememberReadTenant(Array.isArray(rows) ? rows.flat() : rows, scope);
  return rows;
}

export function patchWrites(qi: QueryInterfaceInternals, state: PluginState): void {
  const sequelize = qi.sequelize;
  // The table decides: a call with no model, or a global model, on a tenant model's table is scoped by it.
  const modelOf = (model: AnyModelStatic | null | undefined, tableName: unknown) => scopingModel(sequelize, model, tableName);
  const isUpsert = (options: Options | undefined) => Array.isArray(options?.updateOnDuplicate) && options.updateOnDuplicate.length > 0;

  const insert = qi.insert;
  qi.insert = function scopedInsert(instance, tableName, values, options) {
    return guarded(() => {
      const access = isUpsert(options) ? 'upsert' : 'insert';
      const scope = activeScope(state, modelOf(instance?.constructor ?? options?.model, tableName), 'create', access);
      if (!scope) return insert.call(this, instance, tableName, values, options);
      const row = stampRow(scope, values, 'column');
      if (instance && row !== values) instance.dataValues[scope.meta.attribute] = row[scope.meta.column];
      const sent = insert.call(this, instance, tableName, row, options);
      if (!(options as Record<symbol, unknown> | undefined)?.[IN_FIND_OR_CREATE]) return sent;
      const column = scope.meta.column;
      return sent.catch((err: { fields?: Record<string, unknown> } | undefined) => {
        if (err instanceof UniqueConstraintError && err.fields && Object.hasOwn(err.fields, column)) delete err.fields[column];
        throw err;
      });
    });
  };

  const bulkInsert = qi.bulkInsert;
  qi.bulkInsert = function scopedBulkInsert(tableName, records, options, attributes) {
    return guarded(() => {
      const scope = activeScope(state, modelOf(options?.model, tableName), 'bulkCreate', isUpsert(options) ? 'upsert' : 'insert');
      if (!scope) return bulkInsert.call(this, tableName, records, options, attributes);
      const rows = records.map((r) => stampRow(scope, r, 'column'));
      return bulkInsert.call(this, tableName, rows, options, attributes);
    });
  };

  const upsert = qi.upsert;
  qi.upsert = function scopedUpsert(tableName, insertValues, updateValues, where, options) {
    return guarded(() => {
      const scope = activeScope(state, modelOf(options?.model, tableName), 'upsert', 'upsert');
      if (!scope) return upsert.call(this, tableName, insertValues, updateValues, where, options);
      const row = stampRow(scope, insertValues, 'column');
      return upsert.call(this, tableName, row, withoutTenantInSet(scope, updateValues), where, options);
    });
  };

  // Every ON CONFLICT ... DO UPDATE is written by these two, where Sequelize has settled its conflict
  // target: checked here whatever path reached them (upsert, bulkCreate, create({ updateOnDuplicate }),
  // queryInterface calls with any model or none).
  const generator = qi.queryGenerator;
  const checkedConflict = (table: unknown, options: Options | undefined, operation: 'upsert' | 'bulkCreate') => {
    if (!isUpsert(options)) return options;
    const scope = activeScope(state, modelOf(options?.model, table), operation, 'upsert');
    return scope ? checkConflictTarget(scope, options ?? {}, operation) : options;
  };
  const insertQuery = generator.insertQuery;
  generator.insertQuery = function scopedInsertQuery(table, values, attributes, options) {
    return insertQuery.call(this, table, values, attributes, checkedConflict(table, options, 'upsert'));
  };
  const bulkInsertQuery = generator.bulkInsertQuery;
  generator.bulkInsertQuery = function scopedBulkInsertQuery(table, rows, options, attributes) {
    return bulkInsertQuery.call(this, table, rows, checkedConflict(table, options, 'bulkCreate'), attributes);
  };

  // destroy({ limit }) sends `DELETE FROM t WHERE <key> IN (SELECT <key> FROM t WHERE <where> LIMIT n)`: the
  // inner SELECT got the tenant from bulkDelete; the outer DELETE needs it too, for a declared key that
  // lacks the tenant column matches every tenant's row with that key.
  const deleteQuery = generator.deleteQuery;
  generator.deleteQuery = function scopedDeleteQuery(table, where, options, model) {
    const sql = deleteQuery.call(this, table, where, options, model);
    if (!options?.limit || !model) return sql;
    const scope = activeScope(state, modelOf(model, table), 'destroy', 'write');
    if (!scope?.filters) return sql;
    const head = `DELETE FROM ${this.quoteTable(table)} WHERE `;
    if (!sql.startsWith(head)) {
      throw new MultitenantError(
        `cannot scope the outer statement of destroy({ limit }) (${sql.slice(0, 60)}…); nothing was sent`,
        scope.details,
      );
    }
    return `${head}${this.whereItemsQuery(tenantPredicate(scope), { model: scope.meta.model })} AND ${sql.slice(head.length)}`;
  };

  const update = qi.update;
  qi.update = function scopedUpdate(instance, tableName, values, where, options) {
    return guarded(() => {
      const scope = activeScope(state, modelOf(instance?.constructor, tableName), 'save', 'write');
      if (!scope) return update.call(this, instance, tableName, values, where, options);
      assertInstanceInScope(scope, instance);
      // the tenant column as the instance holds it (checked above) is dropped from SET; any other spelling
      // of it — '"store_id"', or STORE_ID with quoteIdentifiers: false — is refused
      assertPlainKeys(values, scope);
      for (const key of tenantKeysIn(values, scope)) {
        if (key === scope.meta.column) continue;
        throw new TenantMismatchError(`refused to write the tenant column spelt ${key}; nothing was written`, {
          ...scope.details,
          received: values[key],
        });
      }
      const set = { ...values };
      delete set[scope.meta.column];
      if (Object.keys(set).length === 0) return [instance, 0];
      return update.call(this, instance, tableName, set, scopedWhere(where, narrowToInstance(scope, instance)), options);
    });
  };

  const bulkUpdate = qi.bulkUpdate;
  qi.bulkUpdate = function scopedBulkUpdate(tableName, values, where, options, attributes) {
    return guarded(() => {
      const scope = activeScope(state, modelOf(options?.model, tableName), 'update', 'write');
      if (!scope) return bulkUpdate.call(this, tableName, values, where, options, attributes);
      const set = withoutTenantInSet(scope, values);
      if (Object.keys(set).length === 0) return options?.returning ? [] : 0;
      const sent = bulkUpdate.call(this, tableName, set, scopedWhere(where, scope), options, attributes);
      return options?.returning ? sent.then((rows) => remembered(rows, scope)) : sent;
    });
  };

  const del = qi.delete;
  qi.delete = function scopedDelete(instance, tableName, where, options) {
    return guarded(() => {
      const scope = activeScope(state, modelOf(instance?.constructor, tableName), 'destroy', 'write');
      if (!scope) return del.call(this, instance, tableName, where, options);
      assertInstanceInScope(scope, instance);
      return del.call(this, instance, tableName, scopedWhere(where, narrowToInstance(scope, instance)), options);
    });
  };

  const bulkDelete = qi.bulkDelete;
  qi.bulkDelete = function scopedBulkDelete(tableName, where, options, model) {
    return guarded(() => {
      const scope = activeScope(state, modelOf(model ?? options?.model, tableName), 'destroy', 'write');
      if (!scope) {
        if (!options?.truncate || !options.cascade) return bulkDelete.call(this, tableName, where, options, model);
        return assertTruncateStaysGlobal(state, sequelize, tableName, options).then(() =>
          bulkDelete.call(this, tableName, where, options, model),
        );
      }
      if (options?.truncate && scope.filters) {
        // TRUNCATE empties the table for every tenant: under a tenant it becomes DELETE ... WHERE tenant.
        const { truncate: _t, cascade: _c, restartIdentity: _r, ...rest } = options;
        return bulkDelete.call(this, tableName, tenantPredicate(scope), { ...rest, truncate: false }, model);
      }
      return bulkDelete.call(this, tableName, scopedWhere(where, scope), options, model);
    });
  };

  for (const name of ['increment', 'decrement'] as const) {
    const arithmetic = qi[name];
    qi[name] = function scopedArithmetic(model, tableName, where, amounts, extra, options) {
      return guarded(() => {
        const scope = activeScope(state, modelOf(model, tableName), name, 'write');
        if (!scope) return arithmetic.call(this, model, tableName, where, amounts, extra, options);
        assertPlainKeys(amounts, scope);
        if (tenantKeysIn(amounts, scope).length > 0) {
          throw new TenantMismatchError(`refused to ${name} the tenant column ${scope.meta.column}; nothing was written`, scope.details);
        }
        if (options?.instance) assertInstanceInScope(scope, options.instance);
        const own = options?.instance ? narrowToInstance(scope, options.instance) : scope;
        const sent = arithmetic.call(this, model, tableName, scopedWhere(where, own), amounts, withoutTenantInSet(scope, extra), options);
        return options?.returning ? sent.then((rows) => remembered(rows, scope)) : sent;
      });
    };
  }
}
