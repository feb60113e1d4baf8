// A tenant's rows of one table, read and written as PostgreSQL's own JSON of each row: read in pages by
// primary key (each page a router statement), written in batches under the tenant — the tenant column
// always written as the tenant itself, where the auditor and the policies read it.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import { ident } from '../schema/sql';
import { stateOf } from '../state';
import { columnsOf, type TableColumn, type TenantTable } from './tables';
import type { LifecycleTenant } from './tenant';

/**
 * The columns that order a tenant's rows of one table, each with its SQL type (for typed bounds): the
 * primary key's columns but the tenant column (fixed for one tenant: a key that starts with it is then one
 * index range per page, whatever the other tenants hold), or the row's physical position (`ctid`) for a
 * table without a primary key in the database. Empty for a key that is the tenant column alone (the
 * tenant table's one row).
 */
export async function pageKey(
  sequelize: Sequelize,
  t: TenantTable,
  transaction: Transaction | undefined,
  operation: string,
): Promise<Array<{ column: string; type: string }>> {
  const q = (name: string) => ident(sequelize, name, true);
  if (t.key.length === 0) return [{ column: 'ctid', type: 'tid' }];
  const byName = new Map((await columnsOf(sequelize, t, transaction)).map((c) => [c.name, c.type]));
  return t.key
    .filter((k) => k !== t.column)
    .map((k) => {
      const type = byName.get(k);
      if (!type)
        throw new MultitenantError(`${t.quoted} has no column ${k} in the database: sync the model first`, {
          operation,
          model: t.model.name,
        });
      return { column: q(k), type };
    });
}

/** The alias the lifecycle statements give a tenant table: a whole-row reference no column name can shadow (`t.*`). */
export const ROW = 'smt_row';

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
  const q = (name: string) => ident(sequelize, name, true);
  const rest = (await pageKey(sequelize, t, transaction, operation)).map((r) => ({ ...r, column: `${ROW}.${r.column}` }));
  const order = rest.length ? ` ORDER BY ${rest.map((r) => r.column).join(', ')}` : '';
  let after: string[] | undefined;
  for (;;) {
    const bound = after
      ? ` AND (${rest.map((r) => r.column).join(', ')}) > (${rest.map((r, i) => `$${i + 2}::${r.type}`).join(', ')})`
      : '';
    const page = await sequelize.query<Record<string, string>>(
      `SELECT row_to_json(${ROW}.*)::text AS j${rest.length ? `, ${rest.map((r, i) => `${r.column}::text AS k${i}`).join(', ')}` : ''} FROM ${t.quoted} AS ${ROW} WHERE ${ROW}.${q(t.column)} = $1${bound}${order} LIMIT ${batchSize}`,
      { bind: [tenant.value, ...(after ?? [])], type: QueryTypes.SELECT, transaction },
    );
    if (page.length === 0) return;
    const rows = page.map((r) => ({ j: r.j as string, k: rest.map((_, i) => r[`k${i}`] as string) }));
    yield rows;
    // (a key of the tenant column alone: the tenant's one row)
    if (page.length < batchSize || rest.length === 0) return;
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
  options: { operation: string; values: boolean; nothing: string; set?: Record<string, unknown> },
): Promise<void> {
  const written = columns.filter((c) => !c.generated);
  const q = (name: string) => ident(sequelize, name, true);
  // values given for every row (copyTenant's `set`), bound after the statement's own parameters
  const set = options.set ?? {};
  const extra = written.filter((c) => c.name !== t.column && Object.hasOwn(set, c.name));
  const list = written.map((c) => q(c.name)).join(', ');
  const overriding = written.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '';
  try {
    if (!options.values) {
      const bind: unknown[] = [`[${rows.join(',')}]`, tenant.value];
      const values = written.map((c) => {
        if (c.name === t.column) return `$2::${c.type}`;
        if (extra.includes(c)) {
          bind.push(set[c.name]);
          return `$${bind.length}::${c.type}`;
        }
        return `r.${q(c.name)}`;
      });
      await sequelize.query(
        `INSERT INTO ${t.quoted} (${list})${overriding} SELECT ${values.join(', ')} FROM json_populate_recordset(NULL::${t.quoted}, $1::json) AS r`,
        { bind, transaction },
      );
      return;
    }
    for (let at = 0; at < rows.length; at += VALUES_ROWS) {
      const bind: unknown[] = [tenant.value, ...extra.map((c) => set[c.name])];
      // (a row whose every column is given — the tenant table's one row with `set` — binds no JSON of it)
      const readsRow = written.some((c) => c.name !== t.column && !extra.includes(c));
      const tuples = rows.slice(at, at + VALUES_ROWS).map((row) => {
        if (readsRow) bind.push(row);
        const record = `(json_populate_record(NULL::${t.quoted}, $${bind.length}::json))`;
        return `(${written
          .map((c) => {
            if (c.name === t.column) return `$1::${c.type}`;
            const given = extra.indexOf(c);
            return given >= 0 ? `$${given + 2}::${c.type}` : `${record}.${q(c.name)}`;
          })
          .join(', ')})`;
      });
      await sequelize.query(`INSERT INTO ${t.quoted} (${list})${overriding} VALUES ${tuples.join(', ')}`, { bind, transaction });
    }
  } catch (err) {
    // (Sequelize's own message of a key violation is "Validation error": the database's words are in parent)
    const said = (err as { parent?: Error }).parent?.message ?? (err as Error).message;
    const error = new MultitenantError(`the rows of ${t.name} could not be inserted: ${said}; ${options.nothing}`, {
      operation: options.operation,
      tenant: tenant.id,
      model: t.model.name,
    });
    (error as Error & { cause?: unknown }).cause = err;
    throw error;
  }
}
