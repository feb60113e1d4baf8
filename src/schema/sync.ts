// The schema layer on the sync paths Sequelize takes: CREATE TABLE prepared, the tenant foreign keys
// added after each model's sync, kept by `alter`, and on Citus the table distributed — the Citus steps
// are handed in by plugin.ts (citus/ implements them; this room does not import it).
import type { Sequelize } from 'sequelize';
import { runSchemaWork } from '../context';
import { type AnyModelStatic, tenantMeta } from '../models';
import { notify } from '../notice';
import { shapeOf } from '../statements';
import { type StaticMethod, wrapStatic } from '../statics';
import { addForeignKey, exists, hasColumns } from './constraints';
import { type Attributes, deferredOf, prepareCreateTable } from './create-table';
import { type ForeignKeySpec, tenantForeignKeys } from './foreign-keys';
import { isReference } from './graph';
import { checkTenantModel } from './keys';
import { hasCitus, type SqlOptions, type TableName, tableKey } from './sql';
import type { CitusSteps } from './steps';

/** After a model's sync: the foreign keys from and to it whose two tables now exist. */
export async function addForeignKeysFor(
  sequelize: Sequelize,
  model: AnyModelStatic,
  citusSteps: CitusSteps,
  options: SqlOptions = {},
): Promise<ForeignKeySpec[]> {
  const table = tableKey(model.getTableName() as TableName);
  const specs = [...tenantForeignKeys(sequelize, (t) => t === table), ...deferredOf(sequelize).values()].filter(
    (s) => !s.refused && (tableKey(s.child) === table || tableKey(s.parent) === table),
  );
  const added: ForeignKeySpec[] = [];
  const citus = await hasCitus(sequelize, options);
  for (const s of specs) {
    if (!(await exists(sequelize, s.child, options)) || !(await exists(sequelize, s.parent, options))) continue;
    // on Citus a key waits until both of its tables are distributed (the later one's sync adds it)
    if (
      citus &&
      (!(await citusSteps.isDistributed(sequelize, s.child, options)) || !(await citusSteps.isDistributed(sequelize, s.parent, options)))
    )
      continue;
    // a table that exists without a key column yet (alter adds it in that model's own sync): wait for it
    if (!(await hasColumns(sequelize, s.child, s.columns, options)) || !(await hasColumns(sequelize, s.parent, s.parentColumns, options)))
      continue;
    if (await addForeignKey(sequelize, s, options)) added.push(s);
  }
  return added;
}

const patchedSync = new WeakSet<object>();
const noticed = new WeakSet<Sequelize>();

interface QueryInterfaceLike {
  sequelize: Sequelize;
  createTable(tableName: TableName, attributes: Attributes, options: Record<string, unknown>, model?: AnyModelStatic): Promise<unknown>;
}

/** The schema layer on one Sequelize instance: CREATE TABLE preparation and distribution. */
export function patchCreateTable(qi: QueryInterfaceLike, isInstalled: () => boolean, citusSteps: CitusSteps): void {
  const createTable = qi.createTable;
  const sequelize = qi.sequelize;
  qi.createTable = async function schemaAwareCreateTable(tableName, attributes, options, model) {
    if (!model || !isInstalled() || sequelize.getDialect() !== 'postgres')
      return createTable.call(this, tableName, attributes, options, model);
    checkTenantModel(model, 'sync');
    const citus = await hasCitus(sequelize, options as SqlOptions);
    // a Model.sync() alone: what Citus would refuse is refused before CREATE TABLE, not after it
    if (citus) {
      const [first] = citusSteps.problems(sequelize, model);
      if (first) throw first;
    }
    const prepared = prepareCreateTable(sequelize, model, attributes, options ?? {}, citus);
    const result = await createTable.call(this, tableName, prepared.attributes, prepared.options, model);
    if (citus) await citusSteps.distribute(sequelize, model, options as SqlOptions);
    else if (!noticed.has(sequelize) && (tenantMeta(model) || isReference(model))) {
      noticed.add(sequelize);
      notify(sequelize, 'no citus extension in this database: tables are created, not distributed (plain PostgreSQL)', undefined, 'info');
    }
    return result;
  };
}

/** After each Model.sync: add the foreign keys that are now possible. Installed once on the base Model. */
export function patchModelSync(
  Model: { sync(this: AnyModelStatic, options?: Record<string, unknown>): Promise<unknown> },
  isInstalled: (s: Sequelize) => boolean,
  citusSteps: CitusSteps,
): void {
  if (patchedSync.has(Model)) return;
  patchedSync.add(Model);
  wrapStatic(Model, 'sync', (original) => {
    const sync = original as unknown as (this: AnyModelStatic, options?: Record<string, unknown>) => Promise<unknown>;
    return function schemaAwareSync(this: AnyModelStatic, options?: Record<string, unknown>) {
      // (schema work: Sequelize's own catalog reads of a sync are not tenants' rows)
      return runSchemaWork(async () => {
        // Sequelize hands these options on to the statements of `alter` (changeColumn, removeConstraint)
        const result = await sync.call(this, { ...options, [IN_SYNC]: this });
        const sequelize = (this as unknown as { sequelize?: Sequelize }).sequelize;
        if (sequelize && isInstalled(sequelize) && sequelize.getDialect() === 'postgres') {
          const sqlOptions = (options ?? {}) as SqlOptions;
          // Sequelize creates a table only when it is missing: one that existed before (created by plain
          // Sequelize, by an earlier sync that failed part-way) is distributed here, so sync converges.
          if (await hasCitus(sequelize, sqlOptions)) await citusSteps.distribute(sequelize, this, sqlOptions);
          await addForeignKeysFor(sequelize, this, citusSteps, sqlOptions);
        }
        return result;
      });
    } as unknown as StaticMethod;
  });
}

/** Marks the options of the statements a model's sync sends, with the model. */
const IN_SYNC = Symbol('sequelize-multitenant:sync');

interface AlterQueryInterface extends QueryInterfaceLike {
  changeColumn(table: TableName, column: string, attribute: unknown, options?: Record<string | symbol, unknown>): Promise<unknown>;
  removeConstraint(table: TableName, name: string, options?: Record<string | symbol, unknown>): Promise<unknown>;
}

/** The statements Sequelize's changeColumn sends (QueryInterface#changeColumn, sequelize v6), as one message. */
function changeColumnSql(qi: AlterQueryInterface, table: TableName, column: string, attribute: unknown): string {
  const internals = qi as unknown as {
    normalizeAttribute(attribute: unknown): unknown;
    queryGenerator: {
      attributesToSQL(attributes: Record<string, unknown>, options: { context: string; table: TableName }): Record<string, string>;
      changeColumnQuery(table: TableName, attributes: Record<string, string>): string;
    };
  };
  const attributes = internals.queryGenerator.attributesToSQL(
    { [column]: internals.normalizeAttribute(attribute) },
    { context: 'changeColumn', table },
  );
  return internals.queryGenerator.changeColumnQuery(table, attributes);
}

/**
 * `sync({ alter: true })` re-creates what a column's `references` says on every run: Sequelize drops
 * every foreign key on the column to the referenced table (the tenant key too) and adds its own
 * single-column one. Inside a model's sync, the tenant foreign keys are kept and the single-column
 * `REFERENCES` they replace is left out, as at CREATE TABLE.
 */
export function patchAlter(qi: AlterQueryInterface, isInstalled: () => boolean, citusSteps: CitusSteps): void {
  const sequelize = qi.sequelize;
  const changeColumn = qi.changeColumn;
  const removeConstraint = qi.removeConstraint;
  const syncing = (options: Record<string | symbol, unknown> | undefined) =>
    isInstalled() && sequelize.getDialect() === 'postgres' ? (options?.[IN_SYNC] as AnyModelStatic | undefined) : undefined;
  // Citus propagates a DDL message to the shards as it was written, and refuses one that holds several
  // statements — what Sequelize's changeColumn sends (DROP NOT NULL; DROP DEFAULT; TYPE ...): on Citus the
  // statements go one per message, in one transaction (the caller's, or one of their own), all or nothing
  const send = async (
    self: AlterQueryInterface,
    table: TableName,
    column: string,
    attribute: unknown,
    options?: Record<string | symbol, unknown>,
  ) => {
    if (!isInstalled() || sequelize.getDialect() !== 'postgres' || !(await hasCitus(sequelize, options as SqlOptions)))
      return changeColumn.call(self, table, column, attribute, options);
    const sql = changeColumnSql(self, table, column, attribute);
    const shape = shapeOf(sql);
    if (!shape.readable) return changeColumn.call(self, table, column, attribute, options);
    const statements = await citusSteps.alterStatements(sequelize, table, column, shape.statements, options as SqlOptions);
    if (statements.length === 0) return undefined;
    const run = async (transaction: unknown) => {
      for (const statement of statements) await sequelize.query(statement, { ...options, transaction } as never);
    };
    if (statements.length === 1) return run(options?.transaction);
    if (options?.transaction) return run(options.transaction);
    return sequelize.transaction((transaction) => run(transaction));
  };
  qi.changeColumn = async function keepTenantKeys(table, column, attribute, options) {
    const model = syncing(options);
    if (!model || !attribute || typeof attribute !== 'object' || !('references' in attribute))
      return send(this, table, column, attribute, options);
    const citus = await hasCitus(sequelize, options as SqlOptions);
    const prepared = prepareCreateTable(sequelize, model, { [column]: attribute as Attributes[string] }, {}, citus);
    return send(this, table, column, prepared.attributes[column], options);
  };
  qi.removeConstraint = async function keepTenantKeys(table, name, options) {
    const model = syncing(options);
    if (model) {
      const own = tableKey(table);
      if (tenantForeignKeys(sequelize, (t) => t === own).some((s) => tableKey(s.child) === own && s.name === name)) return undefined;
    }
    return removeConstraint.call(this, table, name, options);
  };
}
