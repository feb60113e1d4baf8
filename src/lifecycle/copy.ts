// copyTenant: every row of tenant `from` again as tenant `to` — a sandbox, a demo, a support
// reproduction — table by table in foreign-key order, in one transaction, inside the database (INSERT ...
// SELECT: no row passes through Node). Keys that include the tenant column keep their other columns as
// they are; a unique key without the tenant column would collide, and is refused before anything is
// written, with the fix. Verified table by table (count and checksum of the rows without the tenant
// column) before the transaction commits.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { withTenant } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { checkOptions } from '../options';
import { hasCitus, ident } from '../schema/sql';
import type { TenantId } from '../tenant';
import type { LifecycleProgress } from './export';
import { insertRows, pages, ROW, writesValues } from './rows';
import { columnsOf, type TenantTable, tenantTablesInOrder, textArray } from './tables';
import { assertFitsTables, countRows, type LifecycleTenant, lifecycleTenant, sameTenantIn, stopIfAborted, tenantExists } from './tenant';

/** Options of `copyTenant`: `{ confirm: 'copy 7 to 70' }`-style confirmation is `{ confirm: 70 }` (the new tenant). */
export interface CopyTenantOptions {
  /** The target tenant again, as a confirmation: required. */
  confirm: unknown;
  /**
   * Values for columns of the copied rows, per table (`{ stores: { slug: 'acme-sandbox', name: 'Acme (sandbox)' } }`):
   * what a unique key without the tenant column needs on the tenant table's one row.
   */
  set?: Record<string, Record<string, unknown>>;
  /** With several tenant tables (stores and orgs): the one whose tenant this is. */
  model?: AnyModelStatic;
  onProgress?: (progress: LifecycleProgress) => void;
  /** Stops between two tables when aborted (`LifecycleInterruptedError`): rolled back, nothing is copied. */
  signal?: AbortSignal;
}

/** What `copyTenant` copied, per table, parents first. */
export interface CopyTenantResult {
  from: TenantId;
  to: TenantId;
  tables: Array<{ table: string; rows: number }>;
  total: number;
}

const operation = 'copyTenant';

/**
 * The unique indexes of a table (primary key included; partial ones, `WHERE deleted_at IS NULL`, and those
 * on expressions, `lower(email)`, too) whose plain columns do not include its tenant column: a copy may
 * collide on them. `columns` lists the plain columns and `definition` the index as PostgreSQL shows it.
 */
async function uniqueWithoutTenant(
  sequelize: Sequelize,
  t: TenantTable,
  transaction: Transaction,
): Promise<Array<{ name: string; columns: string[]; definition: string }>> {
  const found = await sequelize.query<{ name: string; columns: string[] | string | null; definition: string }>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition,
            (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)::text[] AS columns
       FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique`,
    { bind: [t.quoted], type: QueryTypes.SELECT, transaction },
  );
  return found
    .map((r) => ({ name: r.name, columns: textArray(r.columns), definition: r.definition }))
    .filter((u) => !u.columns.includes(t.column));
}

/** Count and checksum of the tenant's rows without the tenant column (and the columns set), in key order. */
async function fingerprint(
  sequelize: Sequelize,
  t: TenantTable,
  tenant: LifecycleTenant,
  skip: string[],
  transaction: Transaction,
): Promise<string> {
  const q = (name: string) => ident(sequelize, name, true);
  const minus = [t.column, ...skip].map((c) => ` - ${sequelize.escape(c)}`).join('');
  // (in key order; a table without a primary key in the database: in the order of the rows' text)
  const rest = t.key.filter((k) => k !== t.column).map((k) => `${ROW}.${q(k)}`);
  const order = t.key.length === 0 ? ` ORDER BY (to_jsonb(${ROW}.*)${minus})::text` : rest.length ? ` ORDER BY ${rest.join(', ')}` : '';
  const [row] = await sequelize.query<{ n: string; sum: string | null }>(
    `SELECT count(*) AS n, md5(string_agg((to_jsonb(${ROW}.*)${minus})::text, E'\\n'${order})) AS sum
       FROM ${t.quoted} AS ${ROW} WHERE ${ROW}.${q(t.column)} = $1`,
    { bind: [tenant.value], type: QueryTypes.SELECT, transaction },
  );
  return `${row?.n ?? 0}:${row?.sum ?? ''}`;
}

/**
 * Copies every row of tenant `from` to a new tenant `to`, parents first, in one transaction, inside the
 * database. `to` must have no rows; `confirm` must name it. Unique keys without the tenant column are
 * refused before anything is written (with the fix), unless `set` gives the copied rows other values
 * for them. Verified against the source, table by table, before it commits. Under `rls: true` it runs
 * with both tenants' setting.
 * @example
 * await copyTenant(sequelize, 7, 70, { confirm: 70, set: { stores: { slug: 'acme-sandbox' } } });
 */
export async function copyTenant(sequelize: Sequelize, from: unknown, to: unknown, options: CopyTenantOptions): Promise<CopyTenantResult> {
  checkOptions(operation, options, { set: 'object', model: 'function', onProgress: 'function', signal: 'signal' }, 'nothing was sent', {
    allowed: ['confirm'],
  });
  const source = lifecycleTenant(sequelize, from, operation);
  const target = lifecycleTenant(sequelize, to, operation);
  return withTenant([source.id, target.id], async () => {
    const tables = await tenantTablesInOrder(sequelize, operation, { model: options?.model });
    assertFitsTables(source, tables, operation);
    assertFitsTables(target, tables, operation);
    const same = sameTenantIn(tables);
    const details = { operation, tenant: source.id };
    if (same(source.id, target.id))
      throw new MultitenantError(`a tenant cannot be copied onto itself (${String(source.id)}); nothing was copied`, details);
    const confirmed = options?.confirm;
    if (confirmed === undefined || Array.isArray(confirmed) || !same(confirmed, target.id)) {
      throw new MultitenantError(
        `this creates tenant ${String(target.id)} from ${String(source.id)}: pass { confirm: ${JSON.stringify(String(target.id))} } (the new tenant) to confirm; nothing was copied`,
        details,
      );
    }
    const set = options.set ?? {};
    for (const name of Object.keys(set)) {
      if (!tables.some((t) => t.name === name))
        throw new MultitenantError(
          `set names ${name}, which is no table of this tenant (${tables.map((t) => t.name).join(', ')}); nothing was copied`,
          details,
        );
    }
    return sequelize.transaction(async (transaction) => {
      if (!(await tenantExists(sequelize, tables, source, transaction)))
        throw new MultitenantError(`tenant ${String(source.id)} does not exist: nothing was copied`, details);
      for (const t of tables) {
        if (await tenantExists(sequelize, [{ ...t, isTenantTable: false }], target, transaction)) {
          throw new MultitenantError(
            `tenant ${String(target.id)} already has rows in ${t.name}: copyTenant makes a new tenant; nothing was copied`,
            details,
          );
        }
      }
      // every collision is known before the first row is written
      const plans: Array<{ t: TenantTable; columns: Awaited<ReturnType<typeof columnsOf>>; values: Record<string, unknown> }> = [];
      for (const t of tables) {
        const values = set[t.name] ?? {};
        const columns = await columnsOf(sequelize, t, transaction);
        for (const c of Object.keys(values)) {
          if (c === t.column || !columns.some((col) => col.name === c)) {
            throw new MultitenantError(
              `set.${t.name}.${c}: ${c === t.column ? 'the tenant column is the new tenant' : 'no such column'}; nothing was copied`,
              details,
            );
          }
        }
        const rows = await countRows(sequelize, t, source, transaction);
        for (const u of await uniqueWithoutTenant(sequelize, t, transaction)) {
          const covered = u.columns.some((c) => Object.hasOwn(values, c)) && rows <= 1;
          if (rows > 0 && !covered) {
            const given = u.columns[0] ?? 'a column of it';
            throw new MultitenantError(
              `${t.name}'s unique key ${u.name} ${u.definition.replace(/^.* USING \w+ /, '')} does not include the tenant column ${t.column}: the copied rows would collide with tenant ${String(source.id)}'s. ${
                rows === 1 && u.columns.length
                  ? `Give the copy other values: { set: { ${t.name}: { ${given}: ... } } }, or include`
                  : 'Include'
              } ${t.column} in the key (a composite key, as Citus needs too); nothing was copied`,
              details,
            );
          }
        }
        plans.push({ t, columns, values });
      }
      const result: CopyTenantResult = { from: source.value, to: target.value, tables: [], total: 0 };
      // (Citus under row-level security cannot INSERT ... SELECT from another tenant's shard: the rows pass
      // through here, one page at a time, as router statements — rows.ts, writesValues)
      const throughNode = writesValues(sequelize, await hasCitus(sequelize, { transaction }));
      for (const { t, columns, values } of plans) {
        stopIfAborted(options.signal, operation, target, result.tables, 'rolled back, nothing was copied');
        if (throughNode) {
          for await (const page of pages(sequelize, t, source, 1000, transaction, operation)) {
            const rows = page.map((r) => r.j);
            await insertRows(sequelize, t, columns, rows, target, transaction, {
              operation,
              values: true,
              nothing: 'nothing was copied',
              set: values,
            });
          }
        } else {
          const q = (name: string) => ident(sequelize, name, true);
          const written = columns.filter((c) => !c.generated);
          const bind: unknown[] = [source.value, target.value];
          const select = written.map((c) => {
            if (c.name === t.column) return `$2::${c.type}`;
            if (Object.hasOwn(values, c.name)) {
              bind.push(values[c.name]);
              return `$${bind.length}::${c.type}`;
            }
            return `${ROW}.${q(c.name)}`;
          });
          const overriding = written.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '';
          try {
            await sequelize.query(
              `INSERT INTO ${t.quoted} (${written.map((c) => q(c.name)).join(', ')})${overriding} SELECT ${select.join(', ')} FROM ${t.quoted} AS ${ROW} WHERE ${ROW}.${q(t.column)} = $1`,
              { bind, transaction },
            );
          } catch (err) {
            // (a key the check above cannot foresee — a trigger's, an exclusion constraint's — in the database's words)
            const error = new MultitenantError(
              `the rows of ${t.name} could not be copied: ${(err as { parent?: Error }).parent?.message ?? (err as Error).message}; nothing was copied`,
              { ...details, model: t.model.name },
            );
            (error as Error & { cause?: unknown }).cause = err;
            throw error;
          }
        }
        const skip = Object.keys(values);
        const [was, now] = [
          await fingerprint(sequelize, t, source, skip, transaction),
          await fingerprint(sequelize, t, target, skip, transaction),
        ];
        if (was !== now) {
          throw new MultitenantError(`the copy of ${t.name} does not match its source (${was} ≠ ${now}); nothing was copied`, details);
        }
        const rows = Number(was.split(':')[0]);
        result.tables.push({ table: t.name, rows });
        result.total += rows;
        options.onProgress?.({ table: t.name, rows, total: result.total });
      }
      return result;
    });
  });
}
