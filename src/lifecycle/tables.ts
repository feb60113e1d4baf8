// The tables that hold one tenant's rows, in the order their foreign keys need: every tenant model's
// table (one entry per table), parents before children, as the database's own catalog says — the keys
// an application declared in a migration count as much as Sequelize's associations.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { metaOf, models, tenantTableOf } from '../schema/graph';
import { qualified, rows, type SqlOptions, type TableName } from '../schema/sql';

/** One table of a tenant's data. */
export interface TenantTable {
  /** The model Sequelize knows the table by (the first one, when several share it). */
  readonly model: AnyModelStatic;
  /** As Sequelize names it: 'products', or { tableName, schema }. */
  readonly table: TableName;
  /** `"schema"."table"` or `"table"`. */
  readonly quoted: string;
  /** `schema.table` or `table`: how an export names it (a part that is not a plain lower-case identifier double-quoted: `"Order"`, `"x.y"`). */
  readonly name: string;
  /** The tenant column (`store_id`; for the tenant table itself, its key). */
  readonly column: string;
  /**
   * The primary key's columns as the database has it (not as the model says: a model's `primaryKey` on a
   * table without that key in the database is no promise of uniqueness) — the order pages are read and
   * deleted in; empty when the table has none (then the rows' physical position, `ctid`, orders them).
   */
  readonly key: readonly string[];
  /** True for the tenant table itself (the row that is the tenant). */
  readonly isTenantTable: boolean;
}

/**
 * The tenant models whose rows are one tenant's: all of them when the instance has one tenant table (or
 * none); with several (stores and orgs), those of `model` — the tenant table each belongs to is
 * the one its tenant column points to (schema/graph.ts); a model whose tenant table cannot be told is
 * refused rather than left out (a delete would leave its rows behind).
 */
function tenantModelsFor(sequelize: Sequelize, operation: string, model: AnyModelStatic | undefined): AnyModelStatic[] {
  const all = models(sequelize).filter((m) => metaOf(m));
  const tenantTables = all.filter((m) => metaOf(m)?.isTenantTable);
  if (model && !tenantTables.includes(model)) {
    throw new MultitenantError(
      `model ${model?.name ?? String(model)} is not a tenant table of this instance (${tenantTables.map((m) => m.name).join(', ') || 'none'})`,
      { operation },
    );
  }
  if (tenantTables.length <= 1) return all;
  if (!model) {
    throw new MultitenantError(
      `this instance has several tenant tables (${tenantTables.map((m) => m.name).join(', ')}): pass { model } to say whose tenant this is`,
      { operation },
    );
  }
  return all.filter((m) => {
    const meta = metaOf(m);
    if (!meta) return false;
    if (meta.isTenantTable) return m === model;
    const owner = tenantTableOf(sequelize, m, meta)?.model;
    if (!owner) {
      throw new MultitenantError(
        `${m.name}'s tenant table cannot be told among ${tenantTables.map((t) => t.name).join(', ')}: declare ${m.name}.belongsTo(<the tenant model>, { foreignKey: '${meta.attribute}' })`,
        { operation, model: m.name },
      );
    }
    return owner === model;
  });
}

/**
 * Every tenant model's table (of `model`'s tenants: tenantModelsFor), parents before children
 * (foreign keys among them, read from the catalog). A foreign-key cycle among them is refused: no
 * order would insert them.
 */
export async function tenantTablesInOrder(
  sequelize: Sequelize,
  operation: string,
  options: SqlOptions & { model?: AnyModelStatic } = {},
): Promise<TenantTable[]> {
  const byTable = new Map<string, TenantTable>();
  for (const model of tenantModelsFor(sequelize, operation, options.model)) {
    const meta = metaOf(model);
    if (!meta) continue;
    const table = model.getTableName() as TableName;
    const quoted = qualified(sequelize, table);
    if (byTable.has(quoted)) continue;
    // (a name that is not a plain identifier is quoted, so that no two tables share one: "x.y" and x.y)
    const plain = (part: string) => (/^[a-z_][a-z0-9_]*$/.test(part) ? part : `"${part.replace(/"/g, '""')}"`);
    const name = typeof table === 'string' ? plain(table) : `${table.schema ? `${plain(table.schema)}.` : ''}${plain(table.tableName)}`;
    byTable.set(quoted, { model, table, quoted, name, column: meta.column, key: [], isTenantTable: meta.isTenantTable });
  }
  // the tenant table first among tables no key orders (its row is every other row's parent)
  const tables = [...byTable.values()].sort((a, b) => Number(b.isTenantTable) - Number(a.isTenantTable));
  if (tables.length === 0) return [];
  const names = tables.map((t) => `'${t.quoted.replace(/'/g, "''")}'::regclass`).join(', ');
  // (a table the catalog does not have yet — never synced — is left out of the edges, not refused here)
  const edges = await rows<{ child: string; parent: string }>(
    sequelize,
    `SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent
       FROM pg_constraint c
      WHERE c.contype = 'f' AND c.conrelid <> c.confrelid
        AND c.conrelid = ANY (ARRAY[${names}]::regclass[]) AND c.confrelid = ANY (ARRAY[${names}]::regclass[])`,
    options,
  );
  // regclass::text names a table as the search path shows it: map it back through the same cast
  const shown = await rows<{ shown: string; i: number }>(
    sequelize,
    `SELECT t.oid::regclass::text AS shown, t.i FROM unnest(ARRAY[${names}]::regclass[]) WITH ORDINALITY AS t(oid, i)`,
    options,
  );
  const indexOf = new Map(shown.map((s) => [s.shown, Number(s.i) - 1]));
  // each table's primary key, as the database has it
  const keys = await rows<{ i: number; key: string[] | string }>(
    sequelize,
    `SELECT t.i, array_agg(a.attname ORDER BY k.ord)::text[] AS key
       FROM unnest(ARRAY[${names}]::regclass[]) WITH ORDINALITY AS t(oid, i)
       JOIN pg_index x ON x.indrelid = t.oid AND x.indisprimary
       CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      GROUP BY t.i`,
    options,
  );
  for (const k of keys) {
    const i = Number(k.i) - 1;
    const t = tables[i];
    if (t) tables[i] = { ...t, key: textArray(k.key) };
  }
  const parents = tables.map(() => new Set<number>());
  for (const e of edges) {
    const child = indexOf.get(e.child);
    const parent = indexOf.get(e.parent);
    if (child !== undefined && parent !== undefined) parents[child]?.add(parent);
  }
  // Kahn's algorithm, keeping the models' order among tables that are free at the same time
  const order: TenantTable[] = [];
  const done = new Set<number>();
  while (order.length < tables.length) {
    const next = tables.findIndex((_, i) => !done.has(i) && [...(parents[i] ?? [])].every((p) => done.has(p)));
    if (next < 0) {
      const left = tables.filter((_, i) => !done.has(i)).map((t) => t.quoted);
      throw new MultitenantError(
        `the foreign keys among ${left.join(', ')} form a cycle: no order inserts or deletes their rows one table at a time, so ${operation} cannot run (make one of the keys DEFERRABLE and handle those tables by hand)`,
        { operation },
      );
    }
    done.add(next);
    order.push(tables[next] as TenantTable);
  }
  return order;
}

/** A `text[]` as pg returns it: an array, or its text (`{a,b}`) where no parser is registered. */
export function textArray(value: string[] | string | null | undefined): string[] {
  if (Array.isArray(value)) return value;
  if (!value) return [];
  return String(value)
    .replace(/^\{|\}$/g, '')
    .split(',')
    .map((v) => v.replace(/^"|"$/g, ''));
}

/** A foreign key to one of the tenant's tables: from a table outside them (a global table), or from one of them. */
export interface Reference {
  readonly name: string;
  /** The referencing table, as regclass shows it. */
  readonly child: string;
  /** The referencing table when it is one of the tenant's tables (its rows may be another tenant's). */
  readonly childTable: TenantTable | undefined;
  readonly columns: string[];
  /** The tenant table referenced. */
  readonly parent: TenantTable;
  readonly references: string[];
  /** ON DELETE: 'a' no action, 'r' restrict, 'c' cascade, 'n' set null, 'd' set default. */
  readonly onDelete: string;
}

/** The foreign keys to `tables`, from any table (them too): what a deletion of the tenant's rows meets. */
export async function referencesTo(sequelize: Sequelize, tables: readonly TenantTable[], options: SqlOptions = {}): Promise<Reference[]> {
  if (tables.length === 0) return [];
  const names = tables.map((t) => `'${t.quoted.replace(/'/g, "''")}'::regclass`).join(', ');
  const found = await rows<{
    name: string;
    child: string;
    child_oid: string;
    parent: string;
    columns: string[] | string;
    refs: string[] | string;
    del: string;
  }>(
    sequelize,
    `SELECT c.conname AS name, c.conrelid::regclass::text AS child, c.conrelid::oid::text AS child_oid, c.confrelid::oid::text AS parent, c.confdeltype::text AS del,
            (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(n, ord)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)::text[] AS columns,
            (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY AS k(n, ord)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n)::text[] AS refs
       FROM pg_constraint c
      WHERE c.contype = 'f' AND c.confrelid = ANY (ARRAY[${names}]::regclass[])`,
    options,
  );
  const oids = await rows<{ oid: string; i: number }>(
    sequelize,
    `SELECT t.oid::oid::text AS oid, t.i FROM unnest(ARRAY[${names}]::regclass[]) WITH ORDINALITY AS t(oid, i)`,
    options,
  );
  const byOid = new Map(oids.map((o) => [o.oid, tables[Number(o.i) - 1] as TenantTable]));
  return found.flatMap((f) => {
    const parent = byOid.get(f.parent);
    return parent
      ? [
          {
            name: f.name,
            child: f.child,
            childTable: byOid.get(f.child_oid),
            columns: textArray(f.columns),
            parent,
            references: textArray(f.refs),
            onDelete: f.del,
          },
        ]
      : [];
  });
}

/** A column of a tenant table as the catalog has it. */
export interface TableColumn {
  readonly name: string;
  /** Its SQL type (`format_type`): `integer`, `numeric(20,6)`, `timestamp with time zone`. */
  readonly type: string;
  /** A generated column (`GENERATED ALWAYS AS (...) STORED`): never written. */
  readonly generated: boolean;
  /** An identity column `GENERATED ALWAYS`: written with OVERRIDING SYSTEM VALUE. */
  readonly identityAlways: boolean;
}

/** The table's columns, in their order, as the database has them (not as the model says). */
export async function columnsOf(sequelize: Sequelize, t: TenantTable, transaction?: Transaction): Promise<TableColumn[]> {
  const found = await sequelize.query<{ name: string; type: string; generated: string; identity: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attgenerated::text AS generated, a.attidentity::text AS identity
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    { bind: [t.quoted], type: QueryTypes.SELECT, transaction },
  );
  if (found.length === 0)
    throw new MultitenantError(`${t.quoted} has no columns in the database: sync ${t.model.name} first`, { model: t.model.name });
  return found.map((c) => ({ name: c.name, type: c.type, generated: c.generated !== '', identityAlways: c.identity === 'a' }));
}
