// Readers of libpg-query's parse tree that the analysis walker uses: node kinds, names, constant
// values, the scope entries and outputs of a query, and the function calls that run SQL from text.
import type { ValueSource } from './analysis';

// biome-ignore lint/suspicious/noExplicitAny: libpg-query's JSON AST
export type Node = any;

/**
 * Functions that run SQL given as text (or read a whole table by name): what they read or change cannot
 * be seen in the statement, so under a tenant they are refused as unknowable.
 */
const SQL_TEXT_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite',
  'set_config',
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_fetch',
  'dblink_send_query',
  'dblink_get_result',
  'dblink_build_sql_insert',
  'dblink_build_sql_update',
  'dblink_build_sql_delete',
]);

/**
 * Functions that reach past the statement's tables: files of the server (a table's own data file among
 * them, for a privileged role), other sessions' statements with their values, signals to other sessions.
 */
const OUT_OF_SIGHT_FUNCTIONS = new Map<string, string>([
  ...[
    'pg_read_file',
    'pg_read_binary_file',
    'pg_stat_file',
    'pg_ls_dir',
    'pg_ls_logdir',
    'pg_ls_waldir',
    'pg_ls_tmpdir',
    'pg_ls_archive_statusdir',
    'pg_ls_logicalsnapdir',
    'pg_ls_logicalmapdir',
    'pg_ls_replslotdir',
    'lo_import',
    'lo_export',
    'pg_file_write',
    'pg_file_rename',
    'pg_file_unlink',
  ].map((name): [string, string] => [name, 'reads or writes files of the server (a table’s data file holds every tenant’s rows)']),
  ...['pg_stat_get_activity', 'pg_stat_get_backend_activity', 'pg_stat_statements'].map((name): [string, string] => [
    name,
    'shows other sessions’ statements, with the values in them',
  ]),
  ...['pg_terminate_backend', 'pg_cancel_backend'].map((name): [string, string] => [name, 'signals another session, of any tenant']),
]);

/** Why a function called in a statement makes what it reads or changes invisible, or undefined. */
export function outOfSight(name: string): string | undefined {
  return SQL_TEXT_FUNCTIONS.has(name) ? 'runs SQL given as text' : OUT_OF_SIGHT_FUNCTIONS.get(name);
}

/** A window function call anywhere in `n` (`... OVER (...)`). */
export function hasWindow(n: Node): boolean {
  if (!n || typeof n !== 'object') return false;
  if (Array.isArray(n)) return n.some(hasWindow);
  if (n.FuncCall?.over) return true;
  if (n.SubLink) return false;
  return Object.values(n).some(hasWindow);
}

/** Every function called anywhere in a parse tree that runs SQL from text or reaches past its tables (outOfSight): the first one, or undefined. */
export function sqlTextFunction(n: Node): string | undefined {
  if (!n || typeof n !== 'object') return undefined;
  if (Array.isArray(n)) {
    for (const x of n) {
      const f = sqlTextFunction(x);
      if (f) return f;
    }
    return undefined;
  }
  if (n.FuncCall) {
    const name = (n.FuncCall.funcname ?? []).map(str).at(-1)?.toLowerCase();
    if (name && outOfSight(name)) return name;
  }
  for (const v of Object.values(n)) {
    const f = sqlTextFunction(v);
    if (f) return f;
  }
  return undefined;
}

export interface Entry {
  alias: string;
  /** `other`: a global table, a function, VALUES — in scope under its alias, carrying no tenant value. */
  kind: 'tenant' | 'derived' | 'other';
  table?: string;
  column?: string;
  node?: number;
  /** Derived tables and CTEs: output columns that carry a constrained tenant value → their node. */
  cols?: Map<string, number>;
}

/** A query's outputs: by name, and by position when every output column is explicit (no `*`). */
export interface Outputs {
  byName: Map<string, number>;
  positions?: Array<number | undefined>;
}

/** `AS x(a, b)` / a CTE's column list renames outputs by position; unknown positions (a `*`) carry nothing. */
export function renamed(out: Outputs, names: Node[] | undefined): Map<string, number> {
  if (!names || names.length === 0) return out.byName;
  const map = new Map<string, number>();
  if (!out.positions) return map; // fail closed: which column is which is unknown
  names.forEach((n, i) => {
    const name = str(n);
    const node = out.positions?.[i];
    if (name && node !== undefined) map.set(name, node);
  });
  return map;
}
export type Scope = Entry[];

export const kindOf = (n: Node): string => (n && typeof n === 'object' ? (Object.keys(n)[0] ?? '') : '');
export const str = (n: Node): string | undefined => n?.String?.sval;

/** Types a tenant value may be cast to without changing it. */
export const VALUE_KEEPING_TYPES = new Set(['int2', 'int4', 'int8', 'integer', 'bigint', 'smallint', 'text', 'varchar', 'uuid', 'numeric']);

export function constValue(n: Node): ValueSource | undefined {
  const k = kindOf(n);
  if (k === 'TypeCast') {
    // one cast to a type that keeps the value ('1'::bigint, $1::uuid); a cast chain can change it (1::bit(32)::bit(33) is 2)
    const type = (n.TypeCast.typeName?.names ?? []).map(str).at(-1);
    const arg = n.TypeCast.arg;
    if (!VALUE_KEEPING_TYPES.has(type ?? '') || n.TypeCast.typeName?.typmods || kindOf(arg) === 'TypeCast') return undefined;
    return constValue(arg);
  }
  if (k === 'ParamRef') return { p: n.ParamRef.number };
  if (k === 'A_Const') {
    const c = n.A_Const;
    if (c.isnull) return undefined;
    if (c.ival) return { c: String(c.ival.ival ?? 0) };
    if (c.sval) return { c: String(c.sval.sval ?? '') };
    if (c.fval) return { c: String(c.fval.fval) };
  }
  return undefined;
}
