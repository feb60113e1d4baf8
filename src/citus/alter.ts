// `sync({ alter })` and `changeColumn` on distributed tables: Citus runs one ALTER per message (the schema
// layer splits Sequelize's changeColumn), and refuses any ALTER of a table's distribution column, even one
// that changes nothing (`DROP DEFAULT` where there is none, `TYPE bigint` on a bigint). Of a column's
// statements, those on the distribution column that change nothing are left out; one that would change
// it is refused before anything is sent, with what to do instead.
import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { bare, regclass, rows, type SqlOptions, type TableName } from '../schema/sql';
import { distributionOf } from './distribution';

interface ColumnNow {
  notnull: boolean;
  def: string | null;
  type: string;
}

/**
 * The statements of a `changeColumn` of `column` that Citus can run: unchanged unless `column` is the
 * table's distribution column, whose no-op statements are dropped (a MultitenantError for a real change).
 * @example await alterStatements(sequelize, 'products', 'store_id', ['ALTER TABLE "products" ALTER COLUMN "store_id" DROP DEFAULT'], {})
 */
export async function alterStatements(
  sequelize: Sequelize,
  table: TableName,
  column: string,
  statements: readonly string[],
  options: SqlOptions,
): Promise<string[]> {
  const d = await distributionOf(sequelize, table, options);
  if (d?.kind !== 'hash' || d.column !== column) return [...statements];
  const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
  const [now] = await rows<ColumnNow>(
    sequelize,
    `SELECT a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def, format_type(a.atttypid, NULL) AS type
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = to_regclass(${regclass(sequelize, table)}) AND a.attname = ${literal(column)} AND NOT a.attisdropped`,
    options,
  );
  if (!now) return [...statements];
  const kept: string[] = [];
  for (const statement of statements) {
    const m =
      /\bALTER\s+COLUMN\s+(?:"(?:[^"]|"")+"|\S+)\s+(SET\s+NOT\s+NULL|DROP\s+NOT\s+NULL|DROP\s+DEFAULT|SET\s+DEFAULT\s+[\s\S]+|TYPE\s+([\s\S]+))$/i.exec(
        statement.trim(),
      );
    if (!m) {
      kept.push(statement);
      continue;
    }
    const action = (m[1] as string).replace(/\s+/g, ' ').toUpperCase();
    let unchanged = false;
    if (action === 'SET NOT NULL') unchanged = now.notnull;
    else if (action === 'DROP NOT NULL') unchanged = !now.notnull;
    else if (action === 'DROP DEFAULT') unchanged = now.def === null;
    else if (m[2]) {
      // TYPE x [USING ...]: the same type as the column's (names PostgreSQL reads alike: BIGINT, int8, bigint)
      const wanted = (m[2] as string).replace(/\s+USING\s+[\s\S]*$/i, '').trim();
      const [read] = await rows<{ type: string | null }>(sequelize, `SELECT to_regtype(${literal(wanted)})::text AS type`, options);
      unchanged = read?.type === now.type;
    }
    if (unchanged) continue;
    throw new MultitenantError(
      `Citus cannot change ${bare(table)}.${column}, the column the table is distributed on (${m[1]}): ` +
        `declare it in the model as it is in the database, or change it by hand — SELECT undistribute_table(${regclass(sequelize, table)}), ALTER TABLE, then distribute it again (sync does); nothing was changed`,
      { model: bare(table), operation: 'sync' },
    );
  }
  return kept;
}
