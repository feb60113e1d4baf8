import type { Sequelize } from 'sequelize';
import type { AnyModelStatic } from '../models';

// A query-interface call names its table (a string, `{ tableName, schema }`, `schema.table`, the object
// `Model.getTableName()` returns) and maybe a model. The TABLE decides whether the call is scoped: a call
// with no model, or with a global model, on a tenant model's table is scoped by that tenant model.

interface TableRef {
  readonly table: string;
  readonly schema: string | undefined;
  /**
   * Unquoted names (`quoteIdentifiers: false`) reach PostgreSQL's lexer as they are: whitespace and
   * comments fall away (`' products'` is products). Every name-like token is then a candidate.
   */
  readonly tokens?: readonly string[];
}

const NAME_TOKEN = /[a-z_\u0080-\uffff][a-z0-9_$\u0080-\uffff]*/g;

/**
 * A name as PostgreSQL will see it: Sequelize's quoteIdentifier drops every `"` before quoting
 * (`'"products"'` names products); without quoting (`quoteIdentifiers: false`) PostgreSQL folds case.
 */
function identifier(name: string, folds: boolean): string {
  const bare = name.replace(/"/g, '');
  return folds ? bare.toLowerCase() : bare;
}

/** The table a query-interface argument names, or undefined when it names none that can be known. */
export function tableRef(name: unknown, folds = false): TableRef | undefined {
  const withTokens = (ref: TableRef): TableRef => (folds ? { ...ref, tokens: ref.table.match(NAME_TOKEN) ?? [] } : ref);
  if (typeof name === 'string') {
    const dot = name.indexOf('.');
    return withTokens(
      dot > 0
        ? { schema: identifier(name.slice(0, dot), folds), table: identifier(name.slice(dot + 1), folds) }
        : { table: identifier(name, folds), schema: undefined },
    );
  }
  if (name && (typeof name === 'object' || typeof name === 'function')) {
    const { tableName, schema } = name as { tableName?: unknown; schema?: unknown };
    if (typeof tableName === 'string') {
      return withTokens({
        table: identifier(tableName, folds),
        schema: typeof schema === 'string' && schema ? identifier(schema, folds).trim() : undefined,
      });
    }
  }
  return undefined;
}

/** True when the instance sends identifiers unquoted (`quoteIdentifiers: false`), so PostgreSQL folds their case. */
function foldsCase(sequelize: Sequelize): boolean {
  return (sequelize as unknown as { options?: { quoteIdentifiers?: boolean } }).options?.quoteIdentifiers === false;
}

/** Same table, unless both name a schema and the schemas differ (an unnamed schema may be the search_path's). */
function sameTable(a: TableRef, b: TableRef): boolean {
  return a.table === b.table && (a.schema === undefined || b.schema === undefined || a.schema === b.schema);
}

interface Index {
  readonly models: readonly AnyModelStatic[];
  readonly length: number;
  readonly folds: boolean;
  /** Tenant models (those with a `tenantKey` option) by table name. */
  readonly byTable: Map<string, Array<{ ref: TableRef; model: AnyModelStatic }>>;
}
const indexes = new WeakMap<Sequelize, Index>();

function tenantTables(sequelize: Sequelize): Index['byTable'] {
  const models = (sequelize as unknown as { modelManager: { models: AnyModelStatic[] } }).modelManager.models;
  const folds = foldsCase(sequelize);
  const cached = indexes.get(sequelize);
  if (cached && cached.models === models && cached.length === models.length && cached.folds === folds) return cached.byTable;
  const byTable: Index['byTable'] = new Map();
  for (const model of models) {
    if ((model as unknown as { options?: { tenantKey?: unknown } }).options?.tenantKey == null) continue;
    const ref = tableRef(model.getTableName(), folds);
    if (!ref) continue;
    const list = byTable.get(ref.table) ?? [];
    list.push({ ref, model });
    byTable.set(ref.table, list);
  }
  indexes.set(sequelize, { models, length: models.length, folds, byTable });
  return byTable;
}

/**
 * The model that scopes a call on `tableName`: a tenant model whose table it is (`model` itself when it
 * is one of them), else `model`. On every query's path: a model on its own table is answered at once.
 */
export function scopingModel(
  sequelize: Sequelize,
  model: AnyModelStatic | null | undefined,
  tableName: unknown,
): AnyModelStatic | undefined {
  if (Array.isArray(tableName)) return severalTables(sequelize, model, tableName);
  if (model && (model as unknown as { options?: { tenantKey?: unknown } }).options?.tenantKey != null) {
    const own = model.getTableName() as unknown;
    if (own === tableName || tableName === undefined) return model;
  }
  const ref = tableRef(tableName, foldsCase(sequelize));
  if (!ref) return model ?? undefined;
  const index = tenantTables(sequelize);
  for (const table of ref.tokens ?? [ref.table]) {
    const matching = (index.get(table) ?? []).filter((c) => sameTable(c.ref, { ...ref, table }));
    const found = matching.find((c) => c.model === model)?.model ?? matching[0]?.model;
    if (found) return found;
  }
  return model ?? undefined;
}

/** The first tenant model among several tables (`select(null, ['products', 'stores'])`), else `model`. */
function severalTables(sequelize: Sequelize, model: AnyModelStatic | null | undefined, tables: unknown[]): AnyModelStatic | undefined {
  for (const t of tables) {
    const tenant = scopingModel(sequelize, undefined, Array.isArray(t) ? t[0] : t);
    if (tenant) return tenant;
  }
  return model ?? undefined;
}
