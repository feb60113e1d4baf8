import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, tenantMeta } from '../models';
import { keyProblems } from './checks';
import { distributionProblem, exists, hasColumns, models, tenantForeignKeys, tenantTableOf } from './schema';
import { bare, hasCitus, regclass, rows, type SqlOptions, type TableName, tableKey } from './sql';

// `sequelize.sync()` either converges to the documented schema or refuses before its first DDL
// statement: what would make it fail part-way is checked here first, and on Citus every tenant table is
// proven distributed afterwards (a sync never resolves over a local tenant table).

const INTEGERS = new Set(['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'MEDIUMINT']);

type Raw = Record<string, { field?: string; references?: { model?: TableName | { getTableName(): TableName } } }>;
const raw = (model: AnyModelStatic) => (model as unknown as { rawAttributes: Raw }).rawAttributes;
const isReference = (model: AnyModelStatic) => !!(model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable;
const metaOf = (model: AnyModelStatic) => {
  try {
    return tenantMeta(model);
  } catch {
    return undefined; // a tenantKey that names nothing: reported where the model is used
  }
};

/** What Citus would refuse part-way through a sync, for every model: MultitenantErrors before any DDL. */
function citusProblems(sequelize: Sequelize, only?: AnyModelStatic): MultitenantError[] {
  const problems: MultitenantError[] = [];
  const all = models(sequelize);
  const byTable = new Map(all.map((m) => [tableKey(m.getTableName() as TableName), m]));
  for (const model of only ? [only] : all) {
    const meta = metaOf(model);
    const refuse = (message: string) =>
      problems.push(new MultitenantError(`${message}; nothing was created`, { model: model.name, operation: 'sync' }));
    if (!meta) {
      // a reference table cannot hold a foreign key to a distributed table (a local global table can)
      if (!isReference(model)) continue;
      for (const [name, def] of Object.entries(raw(model))) {
        const ref = def?.references?.model;
        if (!ref) continue;
        const target = byTable.get(tableKey(typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName)));
        if (target && metaOf(target))
          refuse(
            `${model.name}.${name} references ${target.name}, a distributed tenant table, from a reference table: Citus refuses foreign keys from reference tables to distributed tables. Declare the association with constraints: false, or drop referenceTable`,
          );
      }
      continue;
    }
    for (const p of keyProblems(model)) if (p.kind !== 'autoIncrement') refuse(p.message);
    // colocation: Citus colocates tables only when their distribution columns have the same type
    const tenantTable = tenantTableOf(sequelize, model, meta);
    const tenantType = tenantTable && metaOf(tenantTable.model)?.typeKey;
    if (
      tenantTable &&
      tenantType !== meta.typeKey &&
      (tenantTable.declared || (INTEGERS.has(tenantType ?? '') && INTEGERS.has(meta.typeKey)))
    ) {
      const parent = bare(tenantTable.model.getTableName() as TableName);
      refuse(
        `the tenant column ${bare(model.getTableName() as TableName)}.${meta.column} is ${meta.typeKey} but ${parent}'s key is ${tenantType}: Citus colocates tables only when the distribution columns have the same type. Declare both ${INTEGERS.has(meta.typeKey) && INTEGERS.has(tenantType ?? '') ? 'BIGINT' : 'with one type'}`,
      );
    }
    // a key from a distributed table to a table that is neither distributed nor a reference table
    for (const [name, def] of Object.entries(raw(model))) {
      const ref = def?.references?.model;
      if (!ref) continue;
      const table = bare(typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName));
      const target = byTable.get(tableKey(typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName)));
      if (!target || metaOf(target) || isReference(target)) continue;
      refuse(
        `${model.name}.${name} references ${table} (${target.name}), a global model that is not a reference table: Citus refuses a foreign key from a distributed table to a local one. Give ${target.name} referenceTable: true, or declare the association with constraints: false`,
      );
    }
  }
  return problems;
}

/** A model's Citus problems, before its CREATE TABLE (a `Model.sync()` alone); nothing on plain PostgreSQL. */
export function assertModelForCitus(sequelize: Sequelize, model: AnyModelStatic): void {
  const [first] = citusProblems(sequelize, model);
  if (first) throw first;
}

/** Before sync's first DDL statement: throws the first reason it would fail part-way. */
export async function assertSchema(sequelize: Sequelize, options: SqlOptions & { alter?: unknown } = {}): Promise<boolean> {
  const refused = tenantForeignKeys(sequelize).find((s) => s.refused)?.refused;
  if (refused) throw refused;
  if (!options.alter) {
    // a tenant model's table that exists without the tenant column: sync does not add columns (alter does)
    for (const model of models(sequelize)) {
      const meta = metaOf(model);
      const table = model.getTableName() as TableName;
      if (!meta || !(await exists(sequelize, table, options)) || (await hasColumns(sequelize, table, [meta.column], options))) continue;
      throw new MultitenantError(
        `table ${bare(table)} exists without the tenant column ${meta.column}: sync does not add columns. Add it in a migration (and backfill it), or run sync({ alter: true }); nothing was created`,
        { model: model.name, operation: 'sync' },
      );
    }
  }
  const citus = await hasCitus(sequelize, options);
  if (citus) {
    const [first] = citusProblems(sequelize);
    if (first) throw first;
  }
  return citus;
}

/**
 * After sync: every tenant foreign key whose two tables exist is in the catalog, and on Citus every
 * tenant table is distributed and every `referenceTable` model a reference table.
 */
export async function assertConverged(sequelize: Sequelize, citus: boolean, options: SqlOptions = {}): Promise<void> {
  const wrong: string[] = [];
  if (citus) {
    for (const model of models(sequelize)) {
      if (!metaOf(model) && !isReference(model)) continue;
      const table = model.getTableName() as TableName;
      if (!(await exists(sequelize, table, options))) continue;
      const problem = await distributionProblem(sequelize, model, options);
      if (problem) wrong.push(`${problem} (${model.name})`);
    }
  }
  if (wrong.length > 0) {
    throw new MultitenantError(
      `sync did not leave every table as Citus needs it: ${wrong.join('; ')}. Fix it, then run sync again (it distributes tables that already exist), or use createDistributedTable / createReferenceTable in a migration`,
      { operation: 'sync' },
    );
  }
  for (const s of tenantForeignKeys(sequelize)) {
    if (s.refused || !(await exists(sequelize, s.child, options)) || !(await exists(sequelize, s.parent, options))) continue;
    const found = await rows(
      sequelize,
      `SELECT 1 FROM pg_constraint c WHERE c.conrelid = to_regclass(${regclass(sequelize, s.child)}) AND c.contype = 'f' AND c.confrelid = to_regclass(${regclass(sequelize, s.parent)})`,
      options,
    );
    if (found.length === 0) {
      throw new MultitenantError(`sync did not create the tenant foreign key ${s.name} (${s.source})`, {
        model: s.model,
        operation: 'sync',
      });
    }
  }
}

/** `sequelize.sync()` checks the whole schema before it creates, alters or drops anything, and its result after. */
export function patchSequelizeSync(sequelize: Sequelize, isInstalled: () => boolean): void {
  const sync = sequelize.sync;
  sequelize.sync = async function checkedSync(this: Sequelize, ...args: Parameters<Sequelize['sync']>) {
    if (!isInstalled() || this.getDialect() !== 'postgres') return sync.apply(this, args);
    const options = (args[0] ?? {}) as SqlOptions & { alter?: unknown };
    const citus = await assertSchema(this, options);
    const result = await sync.apply(this, args);
    await assertConverged(this, citus, options);
    return result;
  } as Sequelize['sync'];
}
