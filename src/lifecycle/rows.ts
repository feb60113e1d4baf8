// A tenant's rows of one table, read and written as PostgreSQL's own JSON of each row: read in pages by
// primary key (each page a router statement), written in batches under the tenant — the tenant column
// always written as the tenant itself, where the auditor and the policies read it.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import { ident } from '../schema/sql';
import { stateOf } from '../state';
import { columnsOf, type TableColumn, type TenantTable } from './tables';
import type { LifecycleTenant } from './tenant';

/** The key columns' SQL types, for typed page bounds. */
async function keyTypes(sequelize: Sequelize, t: TenantTable, transaction: Transaction, operation: string): Promise<string[]> {
  const byName = new Map((await columnsOf(sequelize, t, transaction)).map((c) => [c.name, c.type]));
  return t.key.map((k) => {
    const type = byName.get(k);
    if (!type)
      throw new MultitenantError(`${t.quoted} has no column ${k} in the database: sync the model first`, {
        operation,
        model: t.model.name,
      });
    return type;
  });
}

/**
 * The pages of one table's rows for the tenant, in key order: `[json text, key values as text]`.
 * Each page is one router statement (`WHERE <tenant column> = $1`).
 */
export async function* pages(
  sequelize: Sequelize,
  t: TenantTable,
  tenant: LifecycleTenant,
  batchSize: number,
  transaction: Transaction,
  operation: string,
): AsyncGenerator<Array<{ j: string; k: string[] }>> {
  const types = await keyTypes(sequelize, t, transaction, operation);
  const q = (name: string) => ident(sequelize, name, true);
  const keys = t.key.map((k) => `t.${q(k)}`);
  const keyText = keys.map((k, i) => `${k}::text AS k${i}`).join(', ');
  let after: string[] | undefined;
  for (;;) {
    const bound = after ? ` AND (${keys.join(', ')}) > (${types.map((type, i) => `$${i + 2}::${type}`).join(', ')})` : '';
    const page = await sequelize.query<Record<string, string>>(
      `SELECT row_to_json(t)::text AS j, ${keyText} FROM ${t.quoted} AS t WHERE t.${q(t.column)} = $1${bound} ORDER BY ${keys.join(', ')} LIMIT ${batchSize}`,
      { bind: [tenant.value, ...(after ?? [])], type: QueryTypes.SELECT, transaction },
    );
    if (page.length === 0) return;
    const rows = page.map((r) => ({ j: r.j as string, k: t.key.map((_, i) => r[`k${i}`] as string) }));
    yield rows;
    if (page.length < batchSize) return;
    after = rows[rows.length - 1]?.k;
  }
}

/**
 * Whether rows must be written as INSERT ... VALUES: on Citus under row-level security. Citus runs an
 * INSERT ... SELECT whose rows come from anything but a colocated table (here: the rows' JSON, or
 * another tenant's shard) by pulling the rows to the coordinator and COPYing them into the shard, and
 * PostgreSQL refuses COPY FROM into a table with row-level security. A multi-row VALUES of one tenant
 * is a router statement instead — about 8× slower than the one-statement JSON form, which everything
 * else uses.
 */
export function writesValues(sequelize: Sequelize, citus: boolean): boolean {
  return citus && stateOf(sequelize)?.options.rls === true;
}

/** Rows per INSERT ... VALUES (its planning grows with its size: 100 was the fastest measured). */
const VALUES_ROWS = 100;

/**
 * Inserts rows (each PostgreSQL's JSON of a row) into one table as the tenant's: every column the table
 * has (generated ones left to the database), the tenant column written as the tenant itself. A database
 * error (a key the rows break, a column the table no longer has) becomes a MultitenantError in the
 * database's own words; the caller's transaction keeps nothing.
 */
export async function insertRows(
  sequelize: Sequelize,
  t: TenantTable,
  columns: readonly TableColumn[],
  rows: readonly string[],
  tenant: LifecycleTenant,
  transaction: Transaction,
  options: { operation: string; values: boolean; nothing: string },
): Promise<void> {
  const written = columns.filter((c) => !c.generated);
  const q = (name: string) => ident(sequelize, name, true);
  const list = written.map((c) => q(c.name)).join(', ');
  const overriding = written.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '';
  try {
    if (!options.values) {
      const values = written.map((c) => (c.name === t.column ? `$2::${c.type}` : `r.${q(c.name)}`));
      await sequelize.query(
        `INSERT INTO ${t.quoted} (${list})${overriding} SELECT ${values.join(', ')} FROM json_populate_recordset(NULL::${t.quoted}, $1::json) AS r`,
        { bind: [`[${rows.join(',')}]`, tenant.value], transaction },
      );
      return;
    }
    for (let at = 0; at < rows.length; at += VALUES_ROWS) {
      const bind: unknown[] = [tenant.value];
      const tuples = rows.slice(at, at + VALUES_ROWS).map((row) => {
        bind.push(row);
        const record = `(json_populate_record(NULL::${t.quoted}, $${bind.length}::json))`;
        return `(${written.map((c) => (c.name === t.column ? `$1::${c.type}` : `${record}.${q(c.name)}`)).join(', ')})`;
      });
      await sequelize.query(`INSERT INTO ${t.quoted} (${list})${overriding} VALUES ${tuples.join(', ')}`, { bind, transaction });
    }
  } catch (err) {
    const error = new MultitenantError(`the rows of ${t.name} could not be inserted: ${(err as Error).message}; ${options.nothing}`, {
      operation: options.operation,
      tenant: tenant.id,
      model: t.model.name,
    });
    (error as Error & { cause?: unknown }).cause = err;
    throw error;
  }
}
