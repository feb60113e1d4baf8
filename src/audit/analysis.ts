// What the analysis of one SQL text yields (analyze.ts makes it, evaluate.ts and auditor.ts read it):
// a verdict, or a small graph whose nodes are tenant-column occurrences.

/** A value a tenant column is compared to: a literal, a bind parameter, or a bind array (`= ANY($1)`). */
export type ValueSource = { c: string } | { p: number } | { any: number };

export interface Graph {
  nodes: number;
  /** Tenant-table references (and written rows) that must end up constrained. `ownRow`: a row written into the tenant table itself. */
  required: Array<{ node: number; table: string; ownRow?: boolean }>;
  /** Constraints to values: the node is constrained when every value is one of the current tenants. */
  direct: Array<{ node: number; values: ValueSource[] }>;
  /** `[from, to]`: `to` is constrained when `from` is (join equalities, subquery outputs). */
  edges: Array<[number, number]>;
}

export type Analysis =
  | { kind: 'pass' }
  | { kind: 'unscoped'; table: string; reason: string }
  /** A statement whose effect the analysis cannot see (EXECUTE, DO, COPY, SQL run from text, CREATE ... AS). */
  | { kind: 'unknowable'; reason: string }
  /** DDL that defines SQL run later or changes tenant tables: refused under a tenant, allowed outside one. */
  | { kind: 'schema'; reason: string }
  | { kind: 'graph'; graph: Graph }
  | { kind: 'unparsed'; message: string };

/** Which tables are tenant tables, their tenant column, and whether it is the tenant table itself: keyed `schema.table`, or `.table` unqualified. */
export type TenantTables = ReadonlyMap<string, { column: string; isTenantTable: boolean }>;
