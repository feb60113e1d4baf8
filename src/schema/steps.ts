// The Citus steps of the sync paths, as the schema layer calls them. citus/ implements them and
// plugin.ts hands them in, so that this room, shared by PostgreSQL and Citus, never imports citus/.
import type { Sequelize } from 'sequelize';
import type { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import type { SqlOptions, TableName } from './sql';

/** What a sync does and checks on Citus (called only when the database has the citus extension). */
export interface CitusSteps {
  /** What Citus would refuse part-way through a sync, for every model or for `only`: errors to throw before any DDL. */
  problems(sequelize: Sequelize, only?: AnyModelStatic): MultitenantError[];
  /** After CREATE TABLE (or over a table that existed): distribute a tenant model, make a `referenceTable` model a reference table. */
  distribute(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions): Promise<string | undefined>;
  /** True when the table is hash-distributed or a reference table (what a foreign key between distributed tables needs). */
  isDistributed(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean>;
  /** What is wrong with how Citus holds a model's table, with the statement that fixes it; undefined when it is right. */
  distributionProblem(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions): Promise<string | undefined>;
  /** Of the statements of a changeColumn, those Citus can run (no-ops on the distribution column left out; a real change refused). */
  alterStatements(
    sequelize: Sequelize,
    table: TableName,
    column: string,
    statements: readonly string[],
    options: SqlOptions,
  ): Promise<string[]>;
}
