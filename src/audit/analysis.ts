// What the analysis of one SQL text yields (analyze.ts makes it, evaluate.ts and auditor.ts read it):
// a verdict, or a small graph whose nodes are tenant-column occurrences.

/**
 * A value a tenant column is compared to: a literal, a bind parameter, a bind array (`= ANY($1)`), or the
 * row a cursor is on (`WHERE CURRENT OF c`: a row of the tenant that declared the cursor).
 */
export type ValueSource = { c: string } | { p: number } | { any: number } | { cursor: string };

/** What a statement does with cursors: the auditor binds each cursor to the tenant that declared it. */
export interface CursorOps {
  /** DECLARE: its name, and whether its query reads a tenant table. */
  declare?: { name: string; overTenant: boolean };
  /** FETCH / MOVE / WHERE CURRENT OF: the cursors it reads. */
  use: string[];
  /** CLOSE name(s), or CLOSE ALL / DISCARD ALL. */
  close?: string[] | 'all';
}

export interface Graph {
  nodes: number;
  /** Tenant-table references (and written rows) that must end up constrained. `ownRow`: a row written into the tenant table itself. */
  required: Array<{ node: number; table: string; ownRow?: boolean }>;
  /** Constraints to values: the node is constrained when every value is one of the current tenants. */
  direct: Array<{ node: number; values: ValueSource[] }>;
  /** `[from, to]`: `to` is constrained when `from` is (join equalities, subquery outputs). */
  edges: Array<[number, number]>;
}

export type Analysis = (
  | { kind: 'pass' }
  | { kind: 'unscoped'; table: string; reason: string }
  /** A statement whose effect the analysis cannot see (EXECUTE, DO, CALL, COPY, SQL run from text, CREATE ... AS, a node kind it does not read). */
  | { kind: 'unknowable'; reason: string }
  /**
   * DDL that defines SQL run later or changes tenant tables: refused under a tenant, allowed outside one —
   * except SQL that defines later SQL over a tenant table (`definesOverTenant`), refused in strict mode too.
   */
  | { kind: 'schema'; reason: string; definesOverTenant?: boolean }
  | { kind: 'graph'; graph: Graph }
  | { kind: 'unparsed'; message: string }
) & { cursors?: CursorOps };

/**
 * Tables that are not tenant tables but that tenant tables reference with an action the database runs
 * over the referencing rows (CASCADE, SET NULL, SET DEFAULT): keyed as TenantTables; `delete` when a
 * DELETE of a row reaches them, `update` the referenced columns whose change reaches them.
 */
export type CascadingTables = ReadonlyMap<string, { delete: boolean; update: ReadonlySet<string> }>;

/** Which tables are tenant tables, their tenant column, and whether it is the tenant table itself: keyed `schema.table`, or `.table` unqualified. */
export type TenantTables = ReadonlyMap<string, { column: string; isTenantTable: boolean }>;
