// `sequelize.sync()` either converges to the documented schema or refuses before its first DDL
// statement: what would make it fail part-way is checked here first, and on Citus every tenant table is
// proven distributed afterwards (a sync never resolves over a local tenant table).
import type { Sequelize } from 'sequelize';
import { runSchemaWork } from '../context';
import { MultitenantError } from '../errors';
import { exists, hasColumns } from './constraints';
import { tenantForeignKeys } from './foreign-keys';
import { isReference, metaOf, models } from './graph';
import { bare, hasCitus, regclass, rows, type SqlOptions, type TableName } from './sql';
import type { CitusSteps } from './steps';

/** Before sync's first DDL statement: throws the first reason it would fail part-way. */
export async function assertSchema(
  sequelize: Sequelize,
  citusSteps: CitusSteps,
  options: SqlOptions & { alter?: unknown; force?: unknown } = {},
): Promise<boolean> {
  const refused = tenantForeignKeys(sequelize).find((s) => s.refused)?.refused;
  if (refused) throw refused;
  if (!options.alter && !options.force) {
    // a tenant model's table that exists without the tenant column: sync does not add columns (alter does;
    // force drops the table and makes it again)
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
    const [first] = citusSteps.problems(sequelize);
    if (first) throw first;
  }
  return citus;
}

/**
 * After sync: every tenant foreign key whose two tables exist is in the catalog, and on Citus every
 * tenant table is distributed and every `referenceTable` model a reference table.
 */
export async function assertConverged(sequelize: Sequelize, citus: CitusSteps | undefined, options: SqlOptions = {}): Promise<void> {
  const wrong: string[] = [];
  if (citus) {
    for (const model of models(sequelize)) {
      if (!metaOf(model) && !isReference(model)) continue;
      const table = model.getTableName() as TableName;
      if (!(await exists(sequelize, table, options))) continue;
      const problem = await citus.distributionProblem(sequelize, model, options);
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
      throw new MultitenantError(
        `sync did not create the tenant foreign key ${s.name} (${s.source}): the tables ${bare(s.child)} and ${bare(s.parent)} exist without it, and the database does not refuse a row of one tenant that points at another's. Fix the cause and run sync again (it adds the keys that are missing), or add it with addTenantForeignKey in a migration`,
        {
          model: s.model,
          operation: 'sync',
        },
      );
    }
  }
}

/** `sequelize.sync()` checks the whole schema before it creates, alters or drops anything, and its result after. */
export function patchSequelizeSync(sequelize: Sequelize, isInstalled: () => boolean, citusSteps: CitusSteps): void {
  const sync = sequelize.sync;
  sequelize.sync = async function checkedSync(this: Sequelize, ...args: Parameters<Sequelize['sync']>) {
    if (!isInstalled() || this.getDialect() !== 'postgres') return sync.apply(this, args);
    const options = (args[0] ?? {}) as SqlOptions & { alter?: unknown; match?: RegExp };
    // `match` guards against syncing the wrong database: Sequelize checks it before any statement, so must this
    const database = (this as unknown as { config?: { database?: string } }).config?.database ?? '';
    if (options.match && !options.match.test(database)) return sync.apply(this, args);
    return runSchemaWork(async () => {
      const citus = await assertSchema(this, citusSteps, options);
      const result = await sync.apply(this, args);
      await assertConverged(this, citus ? citusSteps : undefined, options);
      return result;
    });
  } as Sequelize['sync'];
}
