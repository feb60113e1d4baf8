import type { Sequelize } from 'sequelize';
import { currentFrame, inSchemaWork } from '../context';
import { MultitenantError, UnscopedQueryError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import { notify } from '../notice';
import { runWithSettings, settingsApply } from '../settings';
import { type PluginState, takeVetted } from '../state';
import { columnKind, type Tenant, tenantIdOf } from '../tenant';
import { tagWithTenant } from '../visibility';
import type { Analysis, CascadingTables, Graph, TenantTables } from './analysis';
import { analyzeStatements } from './analyze';
import { firstUnconstrained } from './evaluate';

// biome-ignore lint/suspicious/noExplicitAny: libpg-query's JSON AST
type Parser = { loadModule(): Promise<void>; parseSync(sql: string): { version?: number; stmts: any[] } };
let parser: Parser | undefined;
let loading: Promise<Parser> | undefined;

/** libpg-query is an optional dependency, loaded (its WASM compiled) on the first audited statement. */
export function assertParserInstalled(): void {
  let version: string;
  try {
    version = (require('libpg-query/package.json') as { version: string }).version;
  } catch {
    throw new MultitenantError('the audit option needs the libpg-query package: npm install libpg-query@17', { operation: 'multitenant' });
  }
  if (Number(version.split('.')[0]) !== PARSER_MAJOR) {
    throw new MultitenantError(
      `the auditor reads the parse trees of libpg-query ${PARSER_MAJOR} (PostgreSQL ${PARSER_MAJOR}), and ${version} is installed: npm install libpg-query@${PARSER_MAJOR}`,
      { operation: 'multitenant' },
    );
  }
}

/** The libpg-query major version (= the PostgreSQL parser's) whose parse trees the walker is written and tested for. */
const PARSER_MAJOR = 17;

async function loadParser(): Promise<Parser> {
  if (parser) return parser;
  loading ??= (async () => {
    const mod = require('libpg-query') as Parser;
    await mod.loadModule();
    // a parser of another PostgreSQL version writes trees of another shape: a clear error, never a silent pass
    const probe = mod.parseSync('SELECT 1') as { version?: number; stmts?: Array<{ stmt?: Record<string, unknown> }> };
    if (Math.floor((probe.version ?? 0) / 10000) !== PARSER_MAJOR || !probe.stmts?.[0]?.stmt?.SelectStmt) {
      throw new MultitenantError(
        `the installed libpg-query writes parse trees of PostgreSQL ${Math.floor((probe.version ?? 0) / 10000)}, the auditor reads those of ${PARSER_MAJOR}: npm install libpg-query@${PARSER_MAJOR}`,
        { operation: 'audit' },
      );
    }
    parser = mod;
    return mod;
  })();
  return loading;
}

interface Tables {
  count: number;
  map: TenantTables;
  names: Map<string, string>;
  /** The tenant metadata of each tenant table, keyed as `names` (the table's key in a graph). */
  metas: Map<string, TenantMeta>;
  /** Global tables that tenant tables reference with a cascading action, keyed as `map`. */
  cascading: CascadingTables;
}

const CASCADING_ACTIONS = new Set(['CASCADE', 'SET NULL', 'SET DEFAULT']);
/**
 * The key (as TenantTables keys it) of a table: a name, `{ tableName, schema }` (what `getTableName()`
 * returns) or a model (a `references.model`).
 */
function tableKeyOf(target: unknown): string | undefined {
  const name =
    typeof target === 'function' && typeof (target as AnyModelStatic).getTableName === 'function'
      ? ((target as AnyModelStatic).getTableName() as unknown)
      : target;
  if (typeof name === 'string') return `.${name}`;
  const t = name as { tableName?: string; schema?: string } | undefined;
  if (t && typeof t.tableName === 'string') return t.schema ? `${t.schema}.${t.tableName}` : `.${t.tableName}`;
  return undefined;
}

/**
 * Global tables whose writes reach tenant rows through foreign-key actions the database runs over the
 * referencing rows (Sequelize's belongsTo: ON UPDATE CASCADE) — directly, or through global tables whose
 * rows the action deletes or whose keys it changes. `tenant`: the tenant tables' keys.
 */
function cascadingTables(models: AnyModelStatic[], tenant: TenantTables): CascadingTables {
  interface Edge {
    from: string;
    to: string;
    column: string;
    refColumn: string;
    onDelete: string;
    onUpdate: string;
  }
  const edges: Edge[] = [];
  for (const model of models) {
    const from = tableKeyOf(model.getTableName()) as string;
    for (const [name, attribute] of Object.entries(model.getAttributes()) as Array<
      [string, { references?: unknown; onDelete?: string; onUpdate?: string; field?: string }]
    >) {
      const ref = attribute.references as { model?: unknown; key?: string } | string | undefined;
      if (!ref) continue;
      const to = tableKeyOf(typeof ref === 'string' ? ref : ref.model);
      if (!to || tenant.has(to)) continue;
      edges.push({
        from,
        to,
        column: attribute.field ?? name,
        refColumn: typeof ref === 'string' ? 'id' : (ref.key ?? 'id'),
        onDelete: String(attribute.onDelete ?? '').toUpperCase(),
        onUpdate: String(attribute.onUpdate ?? '').toUpperCase(),
      });
    }
  }
  const cascading = new Map<string, { delete: boolean; update: Set<string> }>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const edge of edges) {
      const fromTenant = tenant.has(edge.from);
      const source = fromTenant ? undefined : cascading.get(edge.from);
      // what the action does to the referencing rows reaches tenant rows: they are tenant rows, or rows of a
      // global table whose deletion (CASCADE) or change of the referencing column reaches them in turn
      const deleteReaches =
        (edge.onDelete === 'CASCADE' && (fromTenant || source?.delete === true)) ||
        ((edge.onDelete === 'SET NULL' || edge.onDelete === 'SET DEFAULT') && (fromTenant || source?.update.has(edge.column) === true));
      const updateReaches = CASCADING_ACTIONS.has(edge.onUpdate) && (fromTenant || source?.update.has(edge.column) === true);
      if (!deleteReaches && !updateReaches) continue;
      const target = cascading.get(edge.to) ?? { delete: false, update: new Set<string>() };
      cascading.set(edge.to, target);
      if (deleteReaches && !target.delete) {
        target.delete = true;
        changed = true;
      }
      if (updateReaches && !target.update.has(edge.refColumn)) {
        target.update.add(edge.refColumn);
        changed = true;
      }
    }
  }
  return cascading;
}

const tableCache = new WeakMap<Sequelize, Tables>();
const analyses = new WeakMap<Sequelize, Map<string, Analysis>>();
const MAX_CACHED = 20_000;

/** Tenant tables of a Sequelize instance, recomputed when models are added. */
function tablesOf(sequelize: Sequelize): Tables {
  const models = (sequelize as unknown as { modelManager: { models: AnyModelStatic[] } }).modelManager.models;
  const hit = tableCache.get(sequelize);
  if (hit && hit.count === models.length) return hit;
  const map = new Map<string, { column: string; isTenantTable: boolean }>();
  const names = new Map<string, string>();
  const metas = new Map<string, TenantMeta>();
  for (const model of models) {
    let meta: ReturnType<typeof tenantMeta>;
    try {
      meta = tenantMeta(model);
    } catch {
      continue;
    }
    if (!meta) continue;
    const key = tableKeyOf(model.getTableName()) as string;
    map.set(key, { column: meta.column, isTenantTable: meta.isTenantTable });
    // (a graph names an unqualified table without the leading dot)
    const graphKey = key.startsWith('.') ? key.slice(1) : key;
    names.set(graphKey, model.name);
    metas.set(graphKey, meta);
  }
  const cascading = cascadingTables(models, map);
  const tables = { count: models.length, map, names, metas, cascading };
  tableCache.set(sequelize, tables);
  analyses.delete(sequelize); // decisions depend on which tables are tenant tables
  return tables;
}

/**
 * How a statement's tenant values compare with the current tenant: as the tenant columns it constrains
 * read them (an integer column reads the tenant '01' and the value 1 as one tenant, a UUID column ignores
 * letter case) when every tenant table it names has a column of one kind; exactly as written otherwise.
 * Every value the graph compares is compared with a tenant column of one of those tables (or a column
 * that carries one as it is), so it is read by that column's type.
 */
export function readingOf(sequelize: Sequelize, graph: Graph): TenantMeta | undefined {
  const metas = tablesOf(sequelize).metas;
  let reading: TenantMeta | undefined;
  for (const r of graph.required) {
    const meta = metas.get(r.table);
    if (!meta) return undefined;
    if (reading && columnKind(reading) !== columnKind(meta)) return undefined;
    reading ??= meta;
  }
  return reading;
}

/** The analysis of one SQL text, cached per Sequelize instance (it does not depend on the tenant or bind values). */
export async function analysisOf(sequelize: Sequelize, sql: string): Promise<Analysis> {
  const tables = tablesOf(sequelize);
  let cache = analyses.get(sequelize);
  if (!cache) {
    cache = new Map();
    analyses.set(sequelize, cache);
  }
  const hit = cache.get(sql);
  if (hit) return hit;
  const p = parser ?? (await loadParser());
  let analysis: Analysis;
  try {
    const parse = (text: string) => p.parseSync(text).stmts;
    analysis = analyzeStatements(parse(sql), tables.map, parse, tables.cascading, sql);
  } catch (err) {
    analysis = { kind: 'unparsed', message: (err as Error).message };
  }
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(sql, analysis);
  return analysis;
}

/** A cursor's binding: the tenant it was declared under (undefined: none, or withoutTenant), and whether its query reads a tenant table. */
interface CursorBinding {
  tenant: string | undefined;
  overTenant: boolean;
}
/** Per connection (a cursor lives on one): the cursors declared through the auditor. */
const cursorsOf = new WeakMap<object, Map<string, CursorBinding>>();
const tenantKeyOf = (tenant: Tenant | undefined) => (tenant ? JSON.stringify([...tenant.keys].sort()) : undefined);
/** Words of SQL that may declare or close a cursor: analyzed for the bookkeeping even when nothing is checked. */
const CURSOR_WORDS = /\b(?:DECLARE|CLOSE|DISCARD)\b/i;

/** Records the cursors a statement declares and closes, once it is allowed to run. */
function keepCursors(analysis: Analysis, connection: object | undefined, tenant: Tenant | undefined): void {
  const ops = analysis.cursors;
  if (!ops || !connection) return;
  let map = cursorsOf.get(connection);
  if (ops.close === 'all') map?.clear();
  else for (const name of ops.close ?? []) map?.delete(name);
  if (ops.declare) {
    if (!map) {
      map = new Map();
      cursorsOf.set(connection, map);
    }
    map.set(ops.declare.name, { tenant: tenantKeyOf(tenant), overTenant: ops.declare.overTenant });
  }
}

/** Why reading cursor `name` here is refused, or undefined: it must have been declared on this connection under the current tenant. */
function cursorRefusal(name: string, connection: object | undefined, tenant: Tenant | undefined): string | undefined {
  const b = connection ? cursorsOf.get(connection)?.get(name) : undefined;
  if (!b)
    return `cursor ${name} was not declared under this tenant through this connection (declared inside a function, outside the library, or not at all): the rows it returns cannot be checked`;
  if (b.overTenant && b.tenant !== tenantKeyOf(tenant))
    return `cursor ${name} was declared under another tenant${b.tenant === undefined ? ' (or outside any: withoutTenant)' : ''}: its rows are that tenant's`;
  return undefined;
}

/**
 * Checks one statement about to be sent; throws UnscopedQueryError (throw mode) or reports it (warn).
 * Resolves to what to do once the statement has run (the cursors it declared or closed are recorded only
 * then: a DECLARE that fails changes no cursor's tenant).
 */
export async function auditStatement(
  sequelize: Sequelize,
  state: PluginState,
  sql: string,
  bind: readonly unknown[] | undefined,
  connection?: object,
): Promise<(() => void) | undefined> {
  const mode = state.options.audit;
  const frame = currentFrame();
  // writeOnly adds no filters on purpose (a migration mode): there is nothing to hold statements to yet.
  if (!mode || mode === 'off' || state.options.writeOnly) return undefined;
  const tenant = frame?.bypass ? undefined : frame?.tenant;
  if (frame?.bypass || (!tenant && !state.options.strict)) {
    // nothing to check here, but a cursor declared now (over every tenant's rows) is bound to no tenant
    if (!CURSOR_WORDS.test(sql)) return undefined;
    const a = await analysisOf(sequelize, sql);
    return () => keepCursors(a, connection, undefined);
  }
  // a statement the library proved safe against the catalog just before (a TRUNCATE ... CASCADE that
  // reaches no tenant table): once
  if (takeVetted(state, sql)) return undefined;
  const analysis = await analysisOf(sequelize, sql);
  let table: string | undefined;
  let reason: string | undefined;
  const cursorOk = (name: string) => cursorRefusal(name, connection, tenant) === undefined;
  const usedCursor = analysis.cursors?.use.find((name) => !cursorOk(name));
  if (usedCursor !== undefined) {
    reason = cursorRefusal(usedCursor, connection, tenant);
    table = '';
  } else if (analysis.kind === 'pass') {
    return () => keepCursors(analysis, connection, tenant);
  } else if (analysis.kind === 'schema' && !tenant && !(analysis.definesOverTenant && !inSchemaWork())) {
    // outside a tenant (strict mode): schema changes run, SQL that defines later SQL over a tenant table does not
    return undefined;
  } else if (analysis.kind === 'unparsed') {
    // the auditor's parser (PostgreSQL 17) may reject what the server accepts: fail closed
    reason = `the auditor's PostgreSQL ${PARSER_MAJOR} parser could not read it (${analysis.message}), so it cannot be checked`;
    table = '';
  } else if (analysis.kind === 'unknowable' || analysis.kind === 'schema') {
    reason = analysis.reason;
    table = '';
  } else if (analysis.kind === 'unscoped') {
    table = analysis.table;
    reason = analysis.reason;
  } else {
    table = firstUnconstrained(analysis.graph, tenant, bind, cursorOk, readingOf(sequelize, analysis.graph));
    if (table) {
      reason = tenant
        ? `${table} is not constrained to the current tenant by its tenant column`
        : `no tenant is set (strict mode) and the statement reads or writes ${table}`;
    }
  }
  if (table === undefined) return () => keepCursors(analysis, connection, tenant);
  const details = {
    model: table ? tablesOf(sequelize).names.get(table) : undefined,
    operation: 'audit',
    tenant: tenant ? tenantIdOf(tenant) : undefined,
    table,
    sql,
  };
  const error = new UnscopedQueryError(`${reason}: ${sql.length > 300 ? `${sql.slice(0, 300)}…` : sql}`, details);
  if (mode === 'throw') throw error;
  notify(sequelize, `audit: ${error.message}`, undefined, 'warn', true);
  return () => keepCursors(analysis, connection, tenant);
}

export type QueryClass = {
  prototype: { run(this: { sequelize: Sequelize; connection?: unknown }, sql: string, parameters?: unknown[]): Promise<unknown> };
};
const patched = new WeakSet<object>();

/**
 * The lowest point where Sequelize knows the final SQL and bind values: the dialect's `Query#run`. Every
 * statement — ORM-built, raw `sequelize.query`, `hooks: false` — passes there. Installed once per
 * dialect class; instances without `audit` or connection settings pass straight through.
 */
export function installAuditor(Query: QueryClass, stateOf: (s: Sequelize) => PluginState | undefined): void {
  if (patched.has(Query)) return;
  patched.add(Query);
  const run = Query.prototype.run;
  const audited = async function auditedRun(
    this: ThisParameterType<typeof run>,
    state: PluginState,
    sql: string,
    sent: string,
    parameters?: unknown[],
  ) {
    const ran = await auditStatement(this.sequelize, state, sql, parameters, this.connection as object | undefined);
    const result = await runWithSettings(this, sent, parameters, () => run.call(this, sent, parameters));
    ran?.();
    return result;
  };
  Query.prototype.run = function auditedRun(sql, parameters) {
    const state = stateOf(this.sequelize);
    // the tenant's sqlcommenter tag (sqlComment): on what is sent and logged; the auditor reads the text
    // without it (a comment changes nothing it checks, and its cache stays one entry per statement shape)
    const sent = state?.options.sqlComment ? tagWithTenant(sql) : sql;
    if (state?.options.audit && state.options.audit !== 'off') return audited.call(this, state, sql, sent, parameters);
    // the per-connection settings the statement must run with (rls, routerOnly), tracked across transactions
    if (settingsApply(this)) return runWithSettings(this, sent, parameters, () => run.call(this, sent, parameters));
    // every statement of the process passes here, plain instances' too: one with nothing to audit and no
    // settings goes straight to Sequelize's run, without a promise or an await of the library's
    return run.call(this, sent, parameters);
  };
}
