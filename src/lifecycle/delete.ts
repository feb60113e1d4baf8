// deleteTenant: every row of one tenant, children first and the tenant's own row last, in batches that
// each commit on their own — an interrupted run leaves whole batches behind, and running it again goes
// on where it stopped (every statement names the tenant: no other tenant's row is ever touched).
// Afterwards it checks that no row of the tenant is left.
import { QueryTypes, type Sequelize } from 'sequelize';
import { withoutTenant, withTenant } from '../context';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { checkOptions } from '../options';
import { hasCitus, ident } from '../schema/sql';
import { normalizeTenant, type TenantId } from '../tenant';
import type { LifecycleProgress } from './export';
import { pageKey, ROW } from './rows';
import { referencesTo, type TenantTable, tenantTablesInOrder } from './tables';
import { assertFitsTables, countRows, type LifecycleTenant, lifecycleTenant, sameTenantIn, stopIfAborted } from './tenant';

/** Options of `deleteTenant` (`confirm` is required: `{ confirm: 7 }`). */
export interface DeleteTenantOptions {
  /** The tenant again, as a confirmation that this tenant's data is to be deleted: required. */
  confirm: unknown;
  /** Rows per DELETE (default 1000); each batch commits on its own. */
  batchSize?: number;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
  onProgress?: (progress: LifecycleProgress) => void;
  /** With several tenant tables (stores and orgs): the one whose tenant this is. */
  model?: AnyModelStatic;
  /** Stops between two batches when aborted (`LifecycleInterruptedError`): the batches done stay deleted; run it again to finish. */
  signal?: AbortSignal;
}

/** What `deleteTenant` deleted (or, with `dryRun`, would delete), per table. */
export interface DeleteTenantResult {
  tenant: TenantId;
  dryRun: boolean;
  /** Children first: the order the rows were (or would be) deleted in. */
  tables: Array<{ table: string; rows: number }>;
  total: number;
  /**
   * On Citus, when every tenant table holds this tenant in a shard of its own (`isolateTenant`): what is
   * faster there (no batches needed), else undefined.
   */
  advice?: string;
}

const operation = 'deleteTenant';
const AFTER = 'the batches deleted so far are committed, no other row was touched; run deleteTenant again to finish';

/**
 * On Citus: when every table holds the tenant in a shard of its own (its hash range is that one value),
 * the batches keep no other tenant from waiting — one DELETE per table is faster.
 */
async function isolatedAdvice(sequelize: Sequelize, tables: readonly TenantTable[], one: LifecycleTenant): Promise<string | undefined> {
  for (const t of tables) {
    // (a table Citus does not distribute has no shard: no advice)
    const [row] = await sequelize
      .query<{ own: boolean }>(
        `SELECT s.shardminvalue::bigint = s.shardmaxvalue::bigint AS own FROM pg_dist_shard s
          WHERE s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::text)`,
        { bind: [t.quoted, String(one.value)], type: QueryTypes.SELECT },
      )
      .catch(() => []);
    if (!row?.own) return undefined;
  }
  return `tenant ${String(one.id)} has a shard of its own in every table (isolateTenant): no other tenant waits on its locks there, so one DELETE per table (a batchSize above its largest table's rows) is faster than batches`;
}

/**
 * What a deletion of the tenant's rows would do beyond them, found before anything is deleted: a row of
 * a global table that refers to the tenant's rows through a key without an ON DELETE action (the delete
 * would stop half-way), and a row of ANOTHER tenant that refers to them through a key between tenant
 * tables that does not pair the tenant columns (`referred_by → stores (id)`): with CASCADE or SET NULL
 * the delete would change that tenant's rows, without an action it would stop half-way. Keys that pair
 * the tenant columns (the composite keys the library makes) cannot reach another tenant and are not
 * read. The check of other tenants' rows runs as `withoutTenant` — it reads whether such a row exists,
 * nothing else.
 */
async function assertNothingElseIsReached(sequelize: Sequelize, tables: readonly TenantTable[], one: LifecycleTenant): Promise<void> {
  const q = (name: string) => ident(sequelize, name, true);
  for (const ref of await referencesTo(sequelize, tables)) {
    const p = ref.parent;
    const child = ref.childTable;
    const paired = child && ref.columns.some((c, i) => c === child.column && ref.references[i] === p.column);
    if (paired || (!child && ref.onDelete !== 'a' && ref.onDelete !== 'r')) continue;
    const referring = `FROM ${ref.child} AS c WHERE (${ref.columns.map((c) => `c.${q(c)}`).join(', ')}) IN
         (SELECT ${ref.references.map((c) => `p.${q(c)}`).join(', ')} FROM ${p.quoted} AS p WHERE p.${q(p.column)} = $1)`;
    const [row] = child
      ? await withoutTenant(() =>
          sequelize.query(`SELECT c.${q(child.column)}::text AS other ${referring} AND c.${q(child.column)} IS DISTINCT FROM $1 LIMIT 1`, {
            bind: [one.value],
            type: QueryTypes.SELECT,
          }),
        )
      : await sequelize.query(`SELECT 1 AS one ${referring} LIMIT 1`, { bind: [one.value], type: QueryTypes.SELECT });
    if (!row) continue;
    const actions: Record<string, string> = {
      a: 'no ON DELETE action',
      r: 'ON DELETE RESTRICT',
      c: 'ON DELETE CASCADE',
      n: 'ON DELETE SET NULL',
      d: 'ON DELETE SET DEFAULT',
    };
    const action = actions[ref.onDelete] ?? ref.onDelete;
    const stops = ref.onDelete === 'a' || ref.onDelete === 'r';
    throw new MultitenantError(
      child
        ? `${child.name} has a row of another tenant (${String((row as { other: string | null }).other)}) that refers to tenant ${String(one.id)}'s rows in ${p.name} (foreign key ${ref.name}, ${action}, which does not pair the tenant columns): deleting them would ${stops ? 'stop half-way' : "change that tenant's rows"}. Detach those rows first (or make the key include the tenant column); nothing was deleted`
        : `${ref.child} (outside the tenant's tables) has rows that refer to tenant ${String(one.id)}'s rows in ${p.name} (foreign key ${ref.name}, ${action}): delete or detach them first, or give the key ON DELETE CASCADE / SET NULL; nothing was deleted`,
      { operation, tenant: one.id, model: p.model.name },
    );
  }
}

/**
 * Deletes every row of one tenant from every tenant model's table — children first, the tenant table's
 * row last — in batches, under that tenant (with `rls: true`, its own setting). Refuses without
 * `confirm` naming the same tenant. `dryRun` returns the counts it would delete. Safe to run again
 * after an interruption. Returns the rows deleted per table, after checking that none is left.
 * @example
 * await deleteTenant(sequelize, 7, { dryRun: true, confirm: 7 }); // { tables: [{ table: 'orders', rows: 1200 }, ...] }
 * await deleteTenant(sequelize, 7, { confirm: 7, onProgress: (p) => console.log(p.table, p.rows) });
 */
export async function deleteTenant(sequelize: Sequelize, tenant: unknown, options: DeleteTenantOptions): Promise<DeleteTenantResult> {
  checkOptions(
    operation,
    options,
    { batchSize: 'positive integer', dryRun: 'boolean', onProgress: 'function', model: 'function', signal: 'signal' },
    'nothing was sent',
    {
      allowed: ['confirm'],
    },
  );
  const one = lifecycleTenant(sequelize, tenant, operation);
  const batchSize = options.batchSize ?? 1000;
  return withTenant(one.id, async () => {
    const tables = (await tenantTablesInOrder(sequelize, operation, { model: options.model })).reverse();
    assertFitsTables(one, tables, operation);
    // the confirmation names the same tenant as the tenant column reads it ('01' is 1 for an integer column)
    const confirmed = options?.confirm === undefined ? undefined : normalizeTenant(options.confirm, { operation });
    const same = sameTenantIn(tables);
    if (!confirmed || confirmed.many || !same(confirmed.ids[0], one.id)) {
      throw new MultitenantError(
        `this deletes every row of tenant ${String(one.id)}: pass { confirm: ${JSON.stringify(String(one.id))} } (the same tenant) to confirm; nothing was deleted`,
        { operation, tenant: one.id },
      );
    }
    await assertNothingElseIsReached(sequelize, tables, one);
    const result: DeleteTenantResult = { tenant: one.value, dryRun: options.dryRun === true, tables: [], total: 0 };
    if (await hasCitus(sequelize)) {
      const advice = await isolatedAdvice(sequelize, tables, one);
      if (advice) result.advice = advice;
    }
    for (const t of tables) {
      if (options.dryRun) {
        const n = await countRows(sequelize, t, one);
        result.tables.push({ table: t.name, rows: n });
        result.total += n;
        continue;
      }
      const column = ident(sequelize, t.column, true);
      const rest = await pageKey(sequelize, t, undefined, operation);
      // (a key of the tenant column alone — the tenant table's row — is deleted by the tenant column itself)
      const cols = rest.length ? rest.map((r) => `${ROW}.${r.column}`) : [`${ROW}.${column}`];
      const keys = cols.map((c, i) => `${c} AS k${i}`).join(', ');
      const ks = cols.map((_, i) => `k${i}`).join(', ');
      let rows = 0;
      let after: string[] | undefined;
      for (;;) {
        stopIfAborted(options.signal, operation, one, [...result.tables, { table: t.name, rows }], AFTER);
        // one router statement per batch, the tenant named in each part: the next page of keys after the
        // last batch's (an index range, not a scan past the rows deleted before), deleted, and its last key
        const bound = after && rest.length ? ` AND (${cols.join(', ')}) > (${rest.map((r, i) => `$${i + 2}::${r.type}`).join(', ')})` : '';
        let found: ({ n: number | string; p: number | string } & Record<string, string | null>) | undefined;
        try {
          [found] = (await sequelize.query(
            `WITH page AS (SELECT ${keys} FROM ${t.quoted} AS ${ROW} WHERE ${ROW}.${column} = $1${bound} ORDER BY ${ks} LIMIT ${batchSize}),
                  gone AS (DELETE FROM ${t.quoted} AS ${ROW} WHERE ${ROW}.${column} = $1 AND (${cols.join(', ')}) IN (SELECT ${ks} FROM page) RETURNING 1)
             SELECT (SELECT count(*) FROM gone) AS n, (SELECT count(*) FROM page) AS p, l.*
               FROM (SELECT 1) AS one LEFT JOIN (SELECT ${cols.map((_, i) => `k${i}::text AS k${i}`).join(', ')} FROM page ORDER BY ${cols.map((_, i) => `k${i} DESC`).join(', ')} LIMIT 1) AS l ON true`,
            { bind: [one.value, ...(after ?? [])], type: QueryTypes.SELECT },
          )) as Array<NonNullable<typeof found>>;
        } catch (err) {
          // (a key of a table the check before did not foresee, a lock timeout: what is done is said)
          const done = [...result.tables, { table: t.name, rows }].filter((d) => d.rows > 0);
          const error = new MultitenantError(
            `${t.name} could not be deleted: ${(err as Error).message}; ${done.length ? `deleted before: ${done.map((d) => `${d.table} ${d.rows}`).join(', ')} (committed)` : 'nothing was deleted'} — run it again once fixed`,
            { operation, tenant: one.id, model: t.model.name },
          );
          (error as Error & { cause?: unknown }).cause = err;
          throw error;
        }
        const n = Number(found?.n ?? 0);
        const paged = Number(found?.p ?? 0);
        rows += n;
        result.total += n;
        if (n > 0) options.onProgress?.({ table: t.name, rows, total: result.total });
        if (paged < batchSize || rest.length === 0) break;
        after = cols.map((_, i) => found?.[`k${i}`] as string);
      }
      result.tables.push({ table: t.name, rows });
    }
    if (!options.dryRun) {
      for (const t of tables) {
        const left = await countRows(sequelize, t, one);
        if (left > 0) {
          throw new MultitenantError(
            `${left} row(s) of tenant ${String(one.id)} are still in ${t.name} after deleteTenant (written meanwhile?): run it again`,
            { operation, tenant: one.id, model: t.model.name },
          );
        }
      }
    }
    return result;
  });
}
