// Structural analysis of one SQL text, once (then cached): which tenant-table references it has, and
// what constrains each of them. The result is a small graph whose nodes are tenant-column occurrences;
// evaluate.ts decides per call, from the current tenant and the bind values, whether every reference
// is constrained.

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
  | { kind: 'graph'; graph: Graph }
  | { kind: 'unparsed'; message: string };

/** Which tables are tenant tables, their tenant column, and whether it is the tenant table itself: keyed `schema.table`, or `.table` unqualified. */
export type TenantTables = ReadonlyMap<string, { column: string; isTenantTable: boolean }>;

// biome-ignore lint/suspicious/noExplicitAny: libpg-query's JSON AST
type Node = any;

class Unscoped extends Error {
  constructor(
    readonly table: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

interface Entry {
  alias: string;
  kind: 'tenant' | 'derived';
  table?: string;
  column?: string;
  node?: number;
  /** Derived tables and CTEs: output columns that carry a constrained tenant value → their node. */
  cols?: Map<string, number>;
}
type Scope = Entry[];

const kindOf = (n: Node): string => (n && typeof n === 'object' ? (Object.keys(n)[0] ?? '') : '');
const str = (n: Node): string | undefined => n?.String?.sval;

function constValue(n: Node): ValueSource | undefined {
  const k = kindOf(n);
  if (k === 'TypeCast') return constValue(n.TypeCast.arg);
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

/**
 * Analyzes the statements of one SQL text (`parse(sql).stmts`); `parse` is used again for SQL that
 * Sequelize embeds in a function body.
 */
export function analyzeStatements(stmts: Node[], tables: TenantTables, parse: (sql: string) => Node[]): Analysis {
  const g: Graph = { nodes: 0, required: [], direct: [], edges: [] };
  const node = () => g.nodes++;
  const ctes: Array<Map<string, Entry>> = [];

  const lookupTable = (rv: Node): { key: string; column: string; isTenantTable: boolean } | undefined => {
    const name: string = rv.relname;
    const qualified = rv.schemaname ? `${rv.schemaname}.${name}` : undefined;
    const q = qualified ? tables.get(qualified) : undefined;
    if (qualified && q) return { key: qualified, ...q };
    if (!rv.schemaname || rv.schemaname === 'public') {
      const bare = tables.get(`.${name}`);
      if (bare) return { key: name, ...bare };
    }
    return undefined;
  };

  /** A column reference → the node of the tenant value it carries, if any. */
  const resolve = (ref: Node, scopes: Scope[]): number | undefined => {
    if (kindOf(ref) === 'TypeCast') return resolve(ref.TypeCast.arg, scopes);
    if (kindOf(ref) !== 'ColumnRef') return undefined;
    const fields: Node[] = ref.ColumnRef.fields;
    const names = fields.map(str);
    if (names.some((n) => n === undefined)) return undefined;
    const column = names[names.length - 1] as string;
    const alias = names.length >= 2 ? names[names.length - 2] : undefined;
    for (const scope of scopes) {
      const candidates: number[] = [];
      for (const e of scope) {
        if (alias !== undefined && e.alias !== alias) continue;
        if (e.kind === 'tenant' && e.column === column && e.node !== undefined) candidates.push(e.node);
        if (e.kind === 'derived' && e.cols?.has(column)) candidates.push(e.cols.get(column) as number);
      }
      if (alias !== undefined && scope.some((e) => e.alias === alias)) return candidates[0];
      if (candidates.length === 1) return candidates[0];
      if (candidates.length > 1) return undefined;
    }
    return undefined;
  };

  /** Nodes reachable in `items` (for the side a LEFT JOIN condition may constrain). */
  const nodesOf = (entries: Entry[]): Set<number> => {
    const s = new Set<number>();
    for (const e of entries) {
      if (e.node !== undefined) s.add(e.node);
      for (const n of e.cols?.values() ?? []) s.add(n);
    }
    return s;
  };

  /** Reads one condition: AND-ed comparisons of tenant columns constrain; OR / NOT branches do not. */
  const condition = (expr: Node, scopes: Scope[], allowed: Set<number> | 'all', subqueries: Node[]) => {
    if (!expr) return;
    collectSubLinks(expr, subqueries);
    const can = (n: number | undefined): n is number => n !== undefined && (allowed === 'all' || allowed.has(n));
    const k = kindOf(expr);
    if (k === 'BoolExpr' && expr.BoolExpr.boolop === 'AND_EXPR') {
      for (const a of expr.BoolExpr.args) condition(a, scopes, allowed, []);
      return;
    }
    if (k !== 'A_Expr') return;
    const e = expr.A_Expr;
    const op = str(e.name?.[0]);
    if (op !== '=') return;
    if (e.kind === 'AEXPR_OP') {
      const l = resolve(e.lexpr, scopes);
      const r = resolve(e.rexpr, scopes);
      const lv = constValue(e.lexpr);
      const rv = constValue(e.rexpr);
      if (can(l) && rv) g.direct.push({ node: l, values: [rv] });
      if (can(r) && lv) g.direct.push({ node: r, values: [lv] });
      if (l !== undefined && r !== undefined) {
        if (can(r)) g.edges.push([l, r]);
        if (can(l)) g.edges.push([r, l]);
      }
    } else if (e.kind === 'AEXPR_IN') {
      const l = resolve(e.lexpr, scopes);
      const items: Node[] = e.rexpr?.List?.items ?? [];
      const values = items.map(constValue);
      if (can(l) && values.length > 0 && values.every(Boolean)) g.direct.push({ node: l, values: values as ValueSource[] });
    } else if (e.kind === 'AEXPR_OP_ANY') {
      const l = resolve(e.lexpr, scopes);
      const v = constValue(e.rexpr);
      if (can(l) && v && 'p' in v) g.direct.push({ node: l, values: [{ any: v.p }] });
    }
  };

  /** Sub-selects inside an expression (EXISTS, IN, scalar): analyzed with the enclosing scopes. */
  function collectSubLinks(n: Node, out: Node[]): void {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) collectSubLinks(x, out);
      return;
    }
    if (n.SubLink) {
      out.push(n.SubLink.subselect);
      collectSubLinks(n.SubLink.testexpr, out);
      return;
    }
    for (const v of Object.values(n)) collectSubLinks(v, out);
  }

  /** One FROM item → scope entries; JOIN conditions are read with the side they may constrain. */
  const fromItem = (item: Node, scopes: Scope[], conds: Array<() => void>, subqueries: Node[]): Entry[] => {
    const k = kindOf(item);
    if (k === 'RangeVar') {
      const rv = item.RangeVar;
      const alias = rv.alias?.aliasname ?? rv.relname;
      if (!rv.schemaname) {
        for (let i = ctes.length - 1; i >= 0; i--) {
          const cte = ctes[i]?.get(rv.relname);
          if (cte) return [{ ...cte, alias }];
        }
      }
      const t = lookupTable(rv);
      if (!t) return [];
      const n = node();
      g.required.push({ node: n, table: t.key });
      return [{ alias, kind: 'tenant', table: t.key, column: t.column, node: n }];
    }
    if (k === 'RangeSubselect') {
      const alias = item.RangeSubselect.alias?.aliasname ?? '';
      const cols = select(item.RangeSubselect.subquery, scopes);
      return [{ alias, kind: 'derived', cols }];
    }
    if (k === 'JoinExpr') {
      const j = item.JoinExpr;
      const left = fromItem(j.larg, scopes, conds, subqueries);
      const right = fromItem(j.rarg, scopes, conds, subqueries);
      const here = [...left, ...right];
      const allowed =
        j.jointype === 'JOIN_LEFT'
          ? nodesOf(right)
          : j.jointype === 'JOIN_RIGHT'
            ? nodesOf(left)
            : j.jointype === 'JOIN_FULL'
              ? new Set<number>()
              : 'all';
      if (j.quals) conds.push(() => condition(j.quals, [here, ...scopes.slice(1)], allowed, subqueries));
      return here;
    }
    return []; // functions, VALUES lists: no tenant table
  };

  /** Analyzes a SELECT; returns its output columns that carry a constrained tenant value. */
  function select(stmt: Node, outer: Scope[]): Map<string, number> {
    const s = stmt?.SelectStmt ?? stmt;
    if (!s) return new Map();
    withClause(s.withClause, outer);
    try {
      if (s.op && s.op !== 'SETOP_NONE') {
        select(s.larg, outer);
        select(s.rarg, outer);
        return new Map();
      }
      const scope: Scope = [];
      const scopes = [scope, ...outer];
      const conds: Array<() => void> = [];
      const subqueries: Node[] = [];
      for (const item of s.fromClause ?? []) scope.push(...fromItem(item, scopes, conds, subqueries));
      for (const c of conds) c();
      condition(s.whereClause, scopes, nodesOf(scope), subqueries);
      collectSubLinks(s.targetList, subqueries);
      collectSubLinks(s.havingClause, subqueries);
      for (const sq of subqueries) select(sq, scopes);
      return outputs(s.targetList ?? [], scope, scopes);
    } finally {
      if (s.withClause) ctes.pop();
    }
  }

  const outputs = (targets: Node[], scope: Scope, scopes: Scope[]): Map<string, number> => {
    const out = new Map<string, number>();
    for (const t of targets) {
      const rt = t.ResTarget;
      const val = rt?.val;
      if (kindOf(val) === 'ColumnRef' && kindOf(val.ColumnRef.fields.at(-1)) === 'A_Star') {
        const alias = val.ColumnRef.fields.length > 1 ? str(val.ColumnRef.fields[0]) : undefined;
        for (const e of scope) {
          if (alias !== undefined && e.alias !== alias) continue;
          if (e.kind === 'tenant' && e.column && e.node !== undefined) out.set(e.column, e.node);
          for (const [c, n] of e.cols ?? []) out.set(c, n);
        }
        continue;
      }
      const n = resolve(val, scopes);
      const name = rt?.name ?? (kindOf(val) === 'ColumnRef' ? str(val.ColumnRef.fields.at(-1)) : undefined);
      if (n !== undefined && name) out.set(name, n);
    }
    return out;
  };

  function withClause(w: Node, outer: Scope[]): void {
    if (!w) return;
    const map = new Map<string, Entry>();
    ctes.push(map);
    for (const c of w.ctes ?? []) {
      const cte = c.CommonTableExpr;
      const q = cte.ctequery;
      const cols = kindOf(q) === 'SelectStmt' ? select(q, outer) : statement(q, outer);
      map.set(cte.ctename, { alias: cte.ctename, kind: 'derived', cols });
    }
  }

  /** A row written into a tenant table must carry a current tenant: a required node constrained by its value. */
  const written = (table: string, value: Node, scopes: Scope[], ownRow = false) => {
    const n = node();
    g.required.push({ node: n, table, ownRow });
    const v = constValue(value);
    if (v) g.direct.push({ node: n, values: [v] });
    else if (ownRow && kindOf(value) === 'SetToDefault') {
      // a new tenant's key from its sequence: allowed with no tenant set, never constrained under one
    } else {
      const from = resolve(value, scopes);
      if (from === undefined)
        throw new Unscoped(table, `the value written to ${table}'s tenant column is neither a constant nor a bind parameter`);
      g.edges.push([from, n]);
    }
  };

  function dml(rel: Node, from: Node[], where: Node, outer: Scope[]): { scope: Scope; target?: Entry } {
    const scope: Scope = [];
    const scopes = [scope, ...outer];
    const conds: Array<() => void> = [];
    const subqueries: Node[] = [];
    const target = fromItem({ RangeVar: rel }, scopes, conds, subqueries)[0];
    if (target) scope.push(target);
    for (const item of from ?? []) scope.push(...fromItem(item, scopes, conds, subqueries));
    for (const c of conds) c();
    condition(where, scopes, nodesOf(scope), subqueries);
    for (const sq of subqueries) select(sq, scopes);
    return { scope, target };
  }

  function statement(stmt: Node, outer: Scope[]): Map<string, number> {
    const k = kindOf(stmt);
    const s = stmt[k];
    switch (k) {
      case 'SelectStmt':
        return select(stmt, outer);
      case 'UpdateStmt': {
        withClause(s.withClause, outer);
        const { scope, target } = dml(s.relation, s.fromClause, s.whereClause, outer);
        if (target?.kind === 'tenant') {
          for (const t of s.targetList ?? [])
            if (t.ResTarget?.name === target.column) written(target.table as string, t.ResTarget.val, [scope, ...outer]);
        }
        if (s.withClause) ctes.pop();
        return new Map();
      }
      case 'DeleteStmt': {
        withClause(s.withClause, outer);
        dml(s.relation, s.usingClause, s.whereClause, outer);
        if (s.withClause) ctes.pop();
        return new Map();
      }
      case 'InsertStmt': {
        withClause(s.withClause, outer);
        const t = lookupTable(s.relation);
        const source = s.selectStmt?.SelectStmt;
        if (t) {
          const cols: string[] = (s.cols ?? []).map((c: Node) => c.ResTarget?.name);
          const at = cols.indexOf(t.column);
          if (at < 0) throw new Unscoped(t.key, `INSERT INTO ${t.key} does not set the tenant column ${t.column}`);
          const conflict = s.onConflictClause;
          if (conflict?.action === 'ONCONFLICT_UPDATE') {
            const keys: string[] = (conflict.infer?.indexElems ?? []).map((e: Node) => e.IndexElem?.name);
            if (!keys.includes(t.column)) {
              throw new Unscoped(
                t.key,
                `ON CONFLICT (${keys.join(', ')}) DO UPDATE on ${t.key} does not include the tenant column ${t.column}`,
              );
            }
          }
          if (source?.valuesLists) {
            for (const row of source.valuesLists) written(t.key, row.List.items[at], outer, t.isTenantTable);
          } else if (source) {
            const out = select({ SelectStmt: source }, outer);
            const target = source.targetList?.[at]?.ResTarget;
            const value = target?.val;
            const name = target?.name ?? (kindOf(value) === 'ColumnRef' ? str(value.ColumnRef.fields.at(-1)) : undefined);
            const n = name ? out.get(name) : undefined;
            const v = constValue(value);
            const w = node();
            g.required.push({ node: w, table: t.key });
            if (v) g.direct.push({ node: w, values: [v] });
            else if (n !== undefined) g.edges.push([n, w]);
            else
              throw new Unscoped(
                t.key,
                `INSERT INTO ${t.key} ... SELECT: the tenant column's value is not from a constrained tenant column`,
              );
          }
        } else if (source) {
          select({ SelectStmt: source }, outer);
        }
        if (s.withClause) ctes.pop();
        return new Map();
      }
      case 'ExplainStmt':
        return statement(s.query, outer);
      case 'TruncateStmt': {
        // TRUNCATE empties a table for every tenant (the library turns Model.truncate() into a scoped DELETE).
        for (const rel of s.relations ?? []) {
          const t = lookupTable(rel.RangeVar);
          if (t) throw new Unscoped(t.key, `TRUNCATE ${t.key} removes every tenant's rows`);
        }
        return new Map();
      }
      case 'CreateFunctionStmt': {
        // Sequelize wraps `findOrCreate`'s INSERT in a pg_temp function: read the INSERT in its body.
        const body: string | undefined = s.options
          ?.map((o: Node) => o.DefElem)
          .find((d: Node) => d?.defname === 'as')
          ?.arg?.List?.items?.map(str)
          .join('');
        const insert = body && /BEGIN\s+(INSERT\s[\s\S]*?)\s+RETURNING \* INTO response;/i.exec(body)?.[1];
        if (insert) for (const r of parse(insert)) statement(r.stmt, outer);
        return new Map();
      }
      default:
        return new Map(); // DDL, transaction control, SET, SHOW ...: nothing to scope
    }
  }

  try {
    for (const raw of stmts) statement(raw.stmt, []);
  } catch (err) {
    if (err instanceof Unscoped) return { kind: 'unscoped', table: err.table, reason: err.reason };
    throw err;
  }
  return g.required.length === 0 ? { kind: 'pass' } : { kind: 'graph', graph: g };
}
