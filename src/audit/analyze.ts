// Structural analysis of one SQL text, once (then cached): which tenant-table references it has, and
// what constrains each of them. The result is a small graph whose nodes are tenant-column occurrences;
// evaluate.ts decides per call, from the current tenant and the bind values, whether every reference
// is constrained.
import type { Analysis, CascadingTables, CursorOps, Graph, TenantTables, ValueSource } from './analysis';
import { ISOLATION_COMMANDS, STATEMENTS, tableReferences, unreadKind } from './kinds';
import {
  constValue,
  type Entry,
  hasWindow,
  kindOf,
  type Node,
  type Outputs,
  outOfSight,
  renamed,
  type Scope,
  sqlTextFunction,
  str,
} from './nodes';

class SchemaChange extends Error {
  constructor(
    message: string,
    /** SQL that runs later, or a change of how isolation works, over a tenant table: refused in strict mode too. */
    readonly definesOverTenant = false,
  ) {
    super(message);
  }
}

/**
 * The INSERT of the function Sequelize's `findOrCreate` sends (QueryGenerator#insertQuery with
 * `exception`), when the statement is exactly that function: `pg_temp.testfunc(OUT response <table>, OUT
 * sequelize_caught_exception text) RETURNS RECORD`, LANGUAGE plpgsql and nothing else, its body
 * Sequelize's text with only the INSERT in it. Anything else is not Sequelize's and is read as any function.
 */
const FIND_OR_CREATE_BODY =
  /^ BEGIN (INSERT [\s\S]*) RETURNING \* INTO response; EXCEPTION WHEN unique_violation THEN GET STACKED DIAGNOSTICS sequelize_caught_exception = PG_EXCEPTION_DETAIL; END $/;
function findOrCreateInsert(s: Node, body: string | undefined): string | undefined {
  if (body === undefined) return undefined;
  const name = (s.funcname ?? []).map(str);
  if (name.length !== 2 || name[0] !== 'pg_temp' || name[1] !== 'testfunc') return undefined;
  const params = (s.parameters ?? []).map((p: Node) => p.FunctionParameter);
  const typeName = (t: Node) => (t?.names ?? []).map(str).join('.');
  if (
    params.length !== 2 ||
    params[0]?.name !== 'response' ||
    params[0]?.mode !== 'FUNC_PARAM_OUT' ||
    params[0]?.defexpr ||
    params[1]?.name !== 'sequelize_caught_exception' ||
    params[1]?.mode !== 'FUNC_PARAM_OUT' ||
    typeName(params[1]?.argType) !== 'text' ||
    typeName(s.returnType) !== 'record' ||
    s.returnType?.setof ||
    s.sql_body
  )
    return undefined;
  const options = (s.options ?? []).map((o: Node) => o.DefElem);
  if (options.length !== 2 || !options.some((d: Node) => d?.defname === 'language' && str(d.arg) === 'plpgsql')) return undefined;
  if (!options.some((d: Node) => d?.defname === 'as')) return undefined;
  return FIND_OR_CREATE_BODY.exec(body)?.[1];
}

/** A digit group separator or a 0x / 0o / 0b prefix somewhere in the text (the fast test before the walk). */
const NEW_NUMBER_SYNTAX = /[0-9]_[0-9]|\b0[xXoObB][0-9a-fA-F_]/;
/**
 * A numeric constant written with PostgreSQL 16's syntax (`1_000`, `0x1F`, `0o17`, `0b101`): the auditor's
 * PostgreSQL 17 parser reads the number, PostgreSQL 13 and 14 read the digits before it and an alias (`1_0`
 * is `1 AS _0`) — another tenant's value. The constant's text at its location (a byte offset).
 */
function versionDependentLiteral(stmts: Node, sql: string): string | undefined {
  if (!NEW_NUMBER_SYNTAX.test(sql)) return undefined;
  const bytes = Buffer.from(sql, 'utf8');
  const visit = (n: Node): string | undefined => {
    if (!n || typeof n !== 'object') return undefined;
    if (Array.isArray(n)) {
      for (const x of n) {
        const found = visit(x);
        if (found) return found;
      }
      return undefined;
    }
    const c = n.A_Const;
    if (c && (c.ival !== undefined || c.fval !== undefined) && typeof c.location === 'number') {
      const text = /^-?\s*([0-9.][0-9a-zA-Z_.]*)/.exec(bytes.subarray(c.location, c.location + 64).toString('utf8'))?.[1];
      if (text && (text.includes('_') || /^0[xob]/i.test(text))) return text;
    }
    for (const v of Object.values(n)) {
      const found = visit(v);
      if (found) return found;
    }
    return undefined;
  };
  return visit(stmts);
}

/** Statements whose every part the walker reads: any other node kind in them, or a table reference it did not read, refuses them. */
const WALKED = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'ExplainStmt',
  'DeclareCursorStmt',
  'CreateTableAsStmt',
]);

/** How a statement kind reads in a message: `CREATE POLICY`, `ALTER FUNCTION`... */
const LABELS: Record<string, string> = {
  ViewStmt: 'CREATE VIEW',
  RuleStmt: 'CREATE RULE',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreatePolicyStmt: 'CREATE POLICY',
  AlterPolicyStmt: 'ALTER POLICY',
  CreateFunctionStmt: 'CREATE FUNCTION',
  AlterTableStmt: 'ALTER TABLE',
};
const label = (k: string) => LABELS[k] ?? k.replace(/Stmt$/, '');

class Unscoped extends Error {
  constructor(
    readonly table: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * Analyzes the statements of one SQL text (`parse(sql).stmts`); `parse` is used again for SQL that
 * Sequelize embeds in a function body.
 */
export function analyzeStatements(
  stmts: Node[],
  tables: TenantTables,
  parse: (sql: string) => Node[],
  cascading: CascadingTables = new Map(),
  sql?: string,
): Analysis {
  const g: Graph = { nodes: 0, required: [], direct: [], edges: [] };
  const node = () => g.nodes++;
  const ctes: Array<Map<string, Entry>> = [];
  /** How many times each unqualified name is read as a table in the statement (a CTE's references, at most). */
  const cteReferences = new Map<string, number>();
  for (const rv of tableReferences(stmts)) if (!rv.schemaname) cteReferences.set(rv.relname, (cteReferences.get(rv.relname) ?? 0) + 1);
  /** The table references the walker has read (RangeVar bodies): any other one naming a tenant table refuses the statement. */
  const seen = new Set<Node>();
  const cursors: CursorOps = { use: [] };

  const lookupTable = (rv: Node): { key: string; column: string; isTenantTable: boolean } | undefined => {
    seen.add(rv);
    return findTable(rv);
  };
  const findTable = (rv: Node): { key: string; column: string; isTenantTable: boolean } | undefined => {
    const name: string = rv.relname;
    const qualified = rv.schemaname ? `${rv.schemaname}.${name}` : undefined;
    const q = qualified ? tables.get(qualified) : undefined;
    if (qualified && q) return { key: qualified, ...q };
    if (!rv.schemaname || rv.schemaname === 'public') {
      const bare = tables.get(`.${name}`);
      if (bare) return { key: name, ...bare };
      const inPublic = tables.get(`public.${name}`);
      if (inPublic) return { key: `public.${name}`, ...inPublic };
    }
    if (!rv.schemaname) {
      // an unqualified name is whichever table the search_path finds first: a tenant table of that name
      // in any schema may be it (fail closed: read as that tenant table)
      for (const [k, v] of tables) if (k.endsWith(`.${name}`) && k.indexOf('.') === k.length - name.length - 1) return { key: k, ...v };
    }
    return undefined;
  };

  /** Catalog views that hold values of every tenant's rows (column statistics: most common values, histograms). */
  const STATISTICS = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data']);
  /** Views of other sessions' statements (their text holds the values they write and compare), in any schema (an extension's). */
  const ACTIVITY = new Set(['pg_stat_activity', 'pg_stat_statements']);

  /** A column reference → the node of the tenant value it carries, if any. */
  const resolve = (ref: Node, scopes: Scope[]): number | undefined => {
    // a tenant column under a cast is not the tenant column (store_id::int::boolean = true matches every tenant)
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
      // unqualified, and none of this level's items is known to carry it: PostgreSQL binds it here if one
      // of them has such a column (a VALUES list, a function, a derived table, a global table), which is
      // not known here — never to an outer level
      if (alias === undefined && scope.length > 0) return undefined;
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
    // a query in any other expression kind (JSON_ARRAY(SELECT ...)) is a sub-select too
    if (n.SelectStmt) {
      out.push(n);
      return;
    }
    if (n.CurrentOfExpr) cursors.use.push(n.CurrentOfExpr.cursor_name);
    for (const v of Object.values(n)) collectSubLinks(v, out);
  }

  /**
   * The sub-selects of every part of a statement that is not read structurally (`skip`): target lists,
   * SET, VALUES, RETURNING, ORDER BY, LIMIT / OFFSET, WINDOW, GROUP BY, HAVING, ON CONFLICT ... — each
   * is analyzed at its own level with the enclosing scopes.
   */
  const otherSubqueries = (stmt: Node, skip: readonly string[], out: Node[]) => {
    for (const [key, value] of Object.entries(stmt ?? {})) if (!skip.includes(key)) collectSubLinks(value, out);
  };

  /** One FROM item → scope entries; JOIN conditions are read with the side they may constrain. */
  const fromItem = (item: Node, scopes: Scope[], conds: Array<() => void>, subqueries: Node[]): Entry[] => {
    const k = kindOf(item);
    if (k === 'RangeVar') {
      const rv = item.RangeVar;
      const alias = rv.alias?.aliasname ?? rv.relname;
      if (!rv.schemaname) {
        for (let i = ctes.length - 1; i >= 0; i--) {
          const cte = ctes[i]?.get(rv.relname);
          if (cte) {
            seen.add(rv);
            return [{ ...cte, alias, cols: rv.alias?.colnames?.length ? new Map() : cte.cols }];
          }
        }
      }
      const t = lookupTable(rv);
      if (!t && STATISTICS.has(rv.relname) && (!rv.schemaname || rv.schemaname === 'pg_catalog'))
        unknowable(`${rv.relname} holds values of every tenant's rows (column statistics)`);
      if (!t && ACTIVITY.has(rv.relname)) unknowable(`${rv.relname} shows other sessions' statements, with the values in them`);
      if (!t) return [{ alias, kind: 'other' }];
      const n = node();
      g.required.push({ node: n, table: t.key });
      // `FROM products AS p(a, b, c)` renames the table's columns by position: which one is the tenant
      // column is then unknown here, so it carries no constraint (a refusal, never a pass)
      const column = rv.alias?.colnames?.length ? undefined : t.column;
      return [{ alias, kind: 'tenant', table: t.key, column, node: n }];
    }
    if (k === 'RangeSubselect') {
      const alias = item.RangeSubselect.alias?.aliasname ?? '';
      const out = select(item.RangeSubselect.subquery, item.RangeSubselect.lateral ? scopes : scopes.slice(1));
      return [{ alias, kind: 'derived', cols: renamed(out, item.RangeSubselect.alias?.colnames) }];
    }
    if (k === 'JoinExpr') {
      const j = item.JoinExpr;
      const left = fromItem(j.larg, scopes, conds, subqueries);
      // a LATERAL item on the right sees the left side's items (PostgreSQL binds `o.x` there, not to an outer o)
      const right = fromItem(j.rarg, [[...(scopes[0] ?? []), ...left], ...scopes.slice(1)], conds, subqueries);
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
      // JOIN ... USING (store_id): the equality of that column on both sides, read like an ON equality
      for (const name of (j.usingClause ?? []).map(str)) {
        const side = (entries: Entry[]) => {
          const found = entries.flatMap((e) =>
            e.kind === 'tenant' && e.column === name && e.node !== undefined
              ? [e.node]
              : e.cols?.has(name)
                ? [e.cols.get(name) as number]
                : [],
          );
          return found.length === 1 ? found[0] : undefined; // a name on several tables of one side: PostgreSQL refuses it
        };
        const l = side(left);
        const r = side(right);
        if (l === undefined || r === undefined) continue;
        if (allowed === 'all' || allowed.has(r)) g.edges.push([l, r]);
        if (allowed === 'all' || allowed.has(l)) g.edges.push([r, l]);
      }
      // `(a JOIN b ON ...) AS j`: the alias hides the tables inside (PostgreSQL binds `p.x` to an outer p);
      // j's columns are theirs by name (a name two of them have is ambiguous), renamed by a column list
      if (j.alias) {
        if (j.alias.colnames?.length) return [{ alias: j.alias.aliasname, kind: 'derived', cols: new Map() }];
        const cols = new Map<string, number>();
        const seen = new Set<string>();
        for (const e of here) {
          const own: Array<[string, number]> =
            e.kind === 'tenant' && e.column && e.node !== undefined ? [[e.column, e.node]] : [...(e.cols ?? [])];
          for (const [c, n] of own) {
            if (seen.has(c)) cols.delete(c);
            else cols.set(c, n);
            seen.add(c);
          }
        }
        return [{ alias: j.alias.aliasname, kind: 'derived', cols }];
      }
      return here;
    }
    if (k === 'RangeTableSample') {
      // `products p TABLESAMPLE SYSTEM (n)`: the sampled table's rows, constrained (or not) like the table's
      const sample = item.RangeTableSample;
      collectSubLinks([sample.args, sample.repeatable], subqueries);
      return fromItem(sample.relation, scopes, conds, subqueries);
    }
    if (k === 'RangeFunction' || k === 'RangeTableFunc' || k === 'JsonTable') {
      // functions and ROWS FROM (json_populate_recordset(null::products, (SELECT ...)), unnest(ARRAY(SELECT
      // ...))), XMLTABLE, JSON_TABLE: their arguments' sub-selects are analyzed; what they return carries
      // no tenant value, and their alias is in scope (a `o.store_id` must not reach an outer o)
      collectSubLinks(item, subqueries);
      // without an alias a function is in scope under its own name, with its columns (a composite's:
      // json_populate_record(null::products, ...) has a store_id): an unqualified column binds to it
      const fn = k === 'RangeFunction' ? item.RangeFunction.functions?.[0]?.List?.items?.[0]?.FuncCall : undefined;
      const alias = item[k]?.alias?.aliasname ?? (fn ? str(fn.funcname?.at(-1)) : undefined) ?? '';
      return [{ alias, kind: 'other' }];
    }
    return unknowable(`the auditor does not read ${k || 'this'} FROM items`);
  };

  /** Analyzes a SELECT (also VALUES); returns its output columns that carry a constrained tenant value. */
  function select(stmt: Node, outer: Scope[]): Outputs {
    const s = stmt?.SelectStmt ?? stmt;
    if (!s) return { byName: new Map() };
    withClause(s.withClause, outer);
    try {
      if (s.op && s.op !== 'SETOP_NONE') {
        select(s.larg, outer);
        select(s.rarg, outer);
        const subqueries: Node[] = [];
        otherSubqueries(s, ['larg', 'rarg', 'withClause'], subqueries);
        for (const sq of subqueries) select(sq, outer);
        return { byName: new Map() };
      }
      const scope: Scope = [];
      const scopes = [scope, ...outer];
      const conds: Array<() => void> = [];
      const subqueries: Node[] = [];
      for (const item of s.fromClause ?? []) scope.push(...fromItem(item, scopes, conds, subqueries));
      for (const c of conds) c();
      condition(s.whereClause, scopes, nodesOf(scope), subqueries);
      otherSubqueries(s, ['fromClause', 'whereClause', 'withClause', 'larg', 'rarg'], subqueries);
      for (const sq of subqueries) select(sq, scopes);
      const out = outputs(s.targetList ?? [], scope, scopes);
      // a filter outside does not limit what is computed inside over every row (window functions,
      // grouping, DISTINCT, LIMIT / OFFSET): such a query's outputs carry no constraint outward
      // one way only: a constrained tenant column inside still constrains what uses the output outside
      if (
        s.groupClause ||
        s.havingClause ||
        s.distinctClause ||
        s.limitCount ||
        s.limitOffset ||
        s.windowClause ||
        hasWindow(s.targetList) ||
        !transparent(s)
      ) {
        const oneWay = (n: number | undefined) => {
          if (n === undefined) return undefined;
          const o = node();
          g.edges.push([n, o]);
          return o;
        };
        return {
          byName: new Map([...out.byName].map(([c, n]) => [c, oneWay(n) as number])),
          positions: out.positions?.map(oneWay),
        };
      }
      return out;
    } finally {
      if (s.withClause) ctes.pop();
    }
  }

  /**
   * A query that computes nothing over the rows it reads: one table, its columns as they are (or
   * constants), no other clause. Only such a derived table or CTE is constrained by a filter outside it;
   * any other may compute over every row before that filter applies (a MATERIALIZED CTE, a function or a
   * division in its target list or WHERE, an ORDER BY expression: side effects and errors are read out).
   */
  const transparent = (s: Node): boolean =>
    (s.fromClause ?? []).length === 1 &&
    kindOf(s.fromClause[0]) === 'RangeVar' &&
    !s.whereClause &&
    !s.sortClause &&
    !s.withClause &&
    !s.lockingClause &&
    (s.targetList ?? []).every((t: Node) => {
      const k = kindOf(t.ResTarget?.val);
      return k === 'ColumnRef' || k === 'A_Const';
    });

  const outputs = (targets: Node[], scope: Scope, scopes: Scope[]): Outputs => {
    const byName = new Map<string, number>();
    let positions: Array<number | undefined> | undefined = [];
    for (const t of targets) {
      const rt = t.ResTarget;
      const val = rt?.val;
      if (kindOf(val) === 'ColumnRef' && kindOf(val.ColumnRef.fields.at(-1)) === 'A_Star') {
        positions = undefined; // the columns a star expands to are not known here
        const alias = val.ColumnRef.fields.length > 1 ? str(val.ColumnRef.fields[0]) : undefined;
        for (const e of scope) {
          if (alias !== undefined && e.alias !== alias) continue;
          if (e.kind === 'tenant' && e.column && e.node !== undefined) byName.set(e.column, e.node);
          for (const [c, n] of e.cols ?? []) byName.set(c, n);
        }
        continue;
      }
      const n = resolve(val, scopes);
      const name = rt?.name ?? (kindOf(val) === 'ColumnRef' ? str(val.ColumnRef.fields.at(-1)) : undefined);
      if (n !== undefined && name) byName.set(name, n);
      positions?.push(n);
    }
    return { byName, positions };
  };

  function withClause(w: Node, outer: Scope[]): void {
    if (!w) return;
    const map = new Map<string, Entry>();
    ctes.push(map);
    for (const c of w.ctes ?? []) {
      const cte = c.CommonTableExpr;
      const q = cte.ctequery;
      const out = kindOf(q) === 'SelectStmt' ? select(q, outer) : statement(q, outer);
      // A CTE is run once for all its references when it is referenced more than once, MATERIALIZED or
      // recursive (PostgreSQL inlines only a lone reference): a filter on one reference then limits
      // neither the rows it reads nor what another reference sees. Its outputs carry a constraint from
      // inside outward only; it must be constrained inside.
      const shared = w.recursive || cte.ctematerialized === 'CTEMaterializeAlways' || (cteReferences.get(cte.ctename) ?? 0) > 1;
      const oneWay = (n: number | undefined) => {
        if (n === undefined || !shared) return n;
        const o = node();
        g.edges.push([n, o]);
        return o;
      };
      const carried: Outputs = {
        byName: new Map([...out.byName].map(([name, n]) => [name, oneWay(n) as number])),
        positions: out.positions?.map(oneWay),
      };
      // `WITH x(a, b) AS (...)`: the CTE's columns renamed by position
      map.set(cte.ctename, { alias: cte.ctename, kind: 'derived', cols: renamed(carried, cte.aliascolnames) });
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

  function dml(rel: Node, from: Node[], where: Node, outer: Scope[], subqueries: Node[]): { scope: Scope; target?: Entry } {
    const scope: Scope = [];
    const scopes = [scope, ...outer];
    const conds: Array<() => void> = [];
    const target = targetOf(rel);
    if (target) scope.push(target);
    for (const item of from ?? []) scope.push(...fromItem(item, scopes, conds, subqueries));
    for (const c of conds) c();
    // WHERE CURRENT OF c: the row cursor c is on, a row of the tenant that declared c (the auditor checks
    // that it is the current one); PostgreSQL allows no other condition beside it
    if (kindOf(where) === 'CurrentOfExpr' && target?.node !== undefined)
      g.direct.push({ node: target.node, values: [{ cursor: where.CurrentOfExpr.cursor_name }] });
    condition(where, scopes, nodesOf(scope), subqueries);
    return { scope, target };
  }

  /** The table an UPDATE / DELETE / MERGE writes: always a real table (PostgreSQL never reads a CTE there). */
  const targetOf = (rel: Node): Entry | undefined => {
    // UPDATE pg_settings is SET by another name (set_config): refused as SET search_path and the rest are
    if (rel.relname === 'pg_settings' && (!rel.schemaname || rel.schemaname === 'pg_catalog'))
      unknowable('writing pg_settings changes settings, as SET does (how later statements are read, what the session may see)');
    const alias = rel.alias?.aliasname ?? rel.relname;
    const t = lookupTable(rel);
    if (!t) return { alias, kind: 'other' };
    const n = node();
    g.required.push({ node: n, table: t.key });
    return { alias, kind: 'tenant', table: t.key, column: t.column, node: n };
  };

  /**
   * A write to a table that tenant tables reference with a cascading action: the database runs the action
   * over every tenant's referencing rows (policies do not filter it). `update`: the columns the write sets.
   */
  const cascades = (rel: Node, write: 'delete' | { update: string[] }): void => {
    if (!rel?.relname) return;
    const keys = rel.schemaname ? [`${rel.schemaname}.${rel.relname}`] : [`.${rel.relname}`, `public.${rel.relname}`];
    if (rel.schemaname === 'public') keys.push(`.${rel.relname}`);
    for (const key of keys) {
      const c = cascading.get(key);
      if (!c) continue;
      if (write === 'delete' ? c.delete : write.update.some((col) => c.update.has(col)))
        unknowable(
          `${write === 'delete' ? 'deleting rows of' : 'changing the referenced key of'} ${rel.relname} runs foreign-key actions over every tenant's rows that reference it`,
        );
    }
  };

  /** A schema change that is harmless outside a tenant (migrations, sync) and refused under one. */
  const schemaChange = (what: string, definesOverTenant = false): never => {
    throw new SchemaChange(what, definesOverTenant);
  };

  /** The bare names of the tenant tables, as a word in SQL text (a function body), quoted or not. */
  const tenantNames = [...tables.keys()].map((key) => key.slice(key.indexOf('.') + 1));
  const mentionsTenantTable = (n: Node): boolean => {
    if (!n || typeof n !== 'object') return false;
    if (Array.isArray(n)) return n.some(mentionsTenantTable);
    const text: unknown = n.String?.sval;
    if (typeof text === 'string') {
      const lower = text.toLowerCase();
      return tenantNames.some((name) => {
        const at = lower.indexOf(name.toLowerCase());
        return at >= 0 && new RegExp(`(^|[^\\w$])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w$])`, 'i').test(text);
      });
    }
    return Object.values(n).some(mentionsTenantTable);
  };

  /**
   * Whether a function's body may reach a tenant table: unless it is SQL the parser reads (a `BEGIN
   * ATOMIC` body, or LANGUAGE sql text) and names no tenant table, it may (PL/pgSQL builds SQL at run time).
   */
  const functionOverTenant = (s: Node, body: string | undefined): boolean => {
    if (touchesTenantTable(s.parameters) || touchesTenantTable(s.returnType)) return true;
    const names = (n: Node) => tableReferences(n).some((rv) => findTable(rv));
    // a body that runs SQL given as text (query_to_xml('select ... from pro' || 'ducts')) may reach any table
    if (s.sql_body) return names(s.sql_body) || sqlTextFunction(s.sql_body) !== undefined;
    const language = s.options?.map((o: Node) => o.DefElem).find((d: Node) => d?.defname === 'language')?.arg?.String?.sval;
    if (String(language).toLowerCase() !== 'sql' || body === undefined) return true;
    try {
      return parse(body).some((r) => names(r.stmt) || mentionsTenantTable(r.stmt) || sqlTextFunction(r.stmt) !== undefined);
    } catch {
      return true;
    }
  };

  /** SQL that runs later, or a change of how isolation works: refused under a tenant; over a tenant table, in strict mode too. */
  const defines = (k: string, s: Node, what = 'defines SQL that runs later, unseen'): never =>
    schemaChange(`${label(k)} ${what}`, touchesTenantTable(s) || mentionsTenantTable(s) || sqlTextFunction(s) !== undefined);

  /** Does a DDL statement name a tenant table (a RangeVar anywhere, or a DROP's object names)? */
  const touchesTenantTable = (n: Node): boolean => {
    if (!n || typeof n !== 'object') return false;
    if (Array.isArray(n)) return n.some(touchesTenantTable);
    if (n.relname !== undefined && lookupTable(n)) return true;
    if (n.RangeVar && lookupTable(n.RangeVar)) return true;
    if (n.List?.items) {
      const names = n.List.items.map(str);
      if (names.every(Boolean) && names.length >= 1) {
        const relname = names.at(-1) as string;
        const schemaname = names.length > 1 ? names.at(-2) : undefined;
        if (lookupTable({ relname, schemaname })) return true;
      }
    }
    return Object.values(n).some(touchesTenantTable);
  };

  /** Refused as unknowable: its effect cannot be seen in the statement. */
  const unknowable = (what: string): never => {
    throw new Unscoped('', `${what}: what it reads or changes cannot be checked`);
  };

  /** `EXCLUDED.store_id` (or the target's own column): an upsert that keeps the row's tenant. */
  const keepsTenant = (val: Node, column: string): boolean => {
    if (kindOf(val) !== 'ColumnRef') return false;
    const names: Array<string | undefined> = val.ColumnRef.fields.map(str);
    return names.at(-1) === column && (names.length === 1 || names[0]?.toLowerCase() === 'excluded');
  };

  function statement(stmt: Node, outer: Scope[]): Outputs {
    const k = kindOf(stmt);
    const s = stmt[k];
    const none: Outputs = { byName: new Map() };
    switch (k) {
      case 'SelectStmt': {
        if (s.intoClause) {
          if (tenantNames.includes(s.intoClause.rel?.relname))
            return schemaChange(
              `a table named ${s.intoClause.rel.relname}, a tenant table's name, would take its place for unqualified names`,
              true,
            );
          // SELECT ... INTO new_table copies rows out of the tenant scope
          const before = g.required.length;
          select(stmt, outer);
          if (g.required.length > before) unknowable('SELECT ... INTO a new table over a tenant table');
          return none;
        }
        return select(stmt, outer);
      }
      case 'UpdateStmt': {
        withClause(s.withClause, outer);
        const subqueries: Node[] = [];
        const { scope, target } = dml(s.relation, s.fromClause, s.whereClause, outer, subqueries);
        cascades(s.relation, { update: (s.targetList ?? []).map((t: Node) => t.ResTarget?.name) });
        if (target?.kind === 'tenant') {
          for (const t of s.targetList ?? []) {
            if (t.ResTarget?.name !== target.column) continue;
            // SET (a, store_id) = (SELECT ...): the tenant column from a row of a sub-select
            if (kindOf(t.ResTarget.val) === 'MultiAssignRef')
              throw new Unscoped(target.table as string, `a multi-column SET assigns ${target.table}'s tenant column from a sub-select`);
            written(target.table as string, t.ResTarget.val, [scope, ...outer]);
          }
        }
        otherSubqueries(s, ['relation', 'fromClause', 'whereClause', 'withClause'], subqueries);
        for (const sq of subqueries) select(sq, [scope, ...outer]);
        if (s.withClause) ctes.pop();
        return none;
      }
      case 'DeleteStmt': {
        withClause(s.withClause, outer);
        const subqueries: Node[] = [];
        const { scope } = dml(s.relation, s.usingClause, s.whereClause, outer, subqueries);
        cascades(s.relation, 'delete');
        otherSubqueries(s, ['relation', 'usingClause', 'whereClause', 'withClause'], subqueries);
        for (const sq of subqueries) select(sq, [scope, ...outer]);
        if (s.withClause) ctes.pop();
        return none;
      }
      case 'InsertStmt': {
        withClause(s.withClause, outer);
        const t = lookupTable(s.relation);
        const source = s.selectStmt?.SelectStmt;
        const subqueries: Node[] = [];
        if (s.onConflictClause?.action === 'ONCONFLICT_UPDATE')
          cascades(s.relation, { update: (s.onConflictClause.targetList ?? []).map((u: Node) => u.ResTarget?.name) });
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
            for (const u of conflict.targetList ?? []) {
              if (u.ResTarget?.name === t.column && !keepsTenant(u.ResTarget.val, t.column))
                throw new Unscoped(t.key, `ON CONFLICT ... DO UPDATE SET ${t.column} on ${t.key} may move the row to another tenant`);
            }
          }
          if (source?.valuesLists) {
            // a new row of the tenant table itself may be made with no tenant set (sign-up); an upsert that
            // may change an existing tenant's row may not
            const ownRow = t.isTenantTable && conflict?.action !== 'ONCONFLICT_UPDATE';
            for (const row of source.valuesLists) written(t.key, row.List.items[at], outer, ownRow);
            collectSubLinks(source.valuesLists, subqueries);
          } else if (source) {
            const out = select({ SelectStmt: source }, outer);
            const target = source.targetList?.[at]?.ResTarget;
            const value = target?.val;
            // by position (the column at the tenant column's place), never by an output's name
            const n = out.positions ? out.positions[at] : undefined;
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
        } else if (source?.valuesLists) collectSubLinks(source.valuesLists, subqueries);
        else if (source) select({ SelectStmt: source }, outer);
        otherSubqueries(s, ['relation', 'selectStmt', 'withClause', 'cols'], subqueries);
        for (const sq of subqueries) select(sq, outer);
        if (s.withClause) ctes.pop();
        return none;
      }
      case 'MergeStmt':
        merge(s, outer);
        return none;
      case 'ExplainStmt': {
        // the plan's estimates come from every tenant's column statistics, and EXPLAIN ANALYZE's counts
        // (rows removed by a filter) from every tenant's rows: over a tenant table, refused under a tenant
        const before = g.required.length;
        statement(s.query, outer);
        if (g.required.length > before)
          return unknowable(
            "EXPLAIN over a tenant table shows estimates from every tenant's statistics (and, with ANALYZE, counts of their rows)",
          );
        return none;
      }
      case 'TruncateStmt': {
        // TRUNCATE empties a table for every tenant (the library turns Model.truncate() into a scoped DELETE).
        for (const rel of s.relations ?? []) {
          const t = lookupTable(rel.RangeVar);
          if (t) throw new Unscoped(t.key, `TRUNCATE ${t.key} removes every tenant's rows`);
        }
        // CASCADE empties every table that references those, tenant tables among them
        if (s.behavior === 'DROP_CASCADE') return unknowable('TRUNCATE ... CASCADE empties the tables that reference it, for every tenant');
        return none;
      }
      case 'DeclareCursorStmt': {
        // DECLARE c CURSOR FOR SELECT ...: FETCH returns what the query selects, later, under whichever
        // tenant is current then: the cursor is bound to the tenant it was declared under (auditor.ts)
        const before = g.required.length;
        const out = statement(s.query, outer);
        cursors.declare = { name: s.portalname, overTenant: g.required.length > before };
        return out;
      }
      case 'FetchStmt':
        // FETCH / MOVE: rows of the cursor's query, read under the tenant that declared it only
        cursors.use.push(s.portalname);
        return none;
      case 'ClosePortalStmt':
        cursors.close = s.portalname ? [...(cursors.close === 'all' ? [] : (cursors.close ?? [])), s.portalname] : 'all';
        return none;
      case 'DiscardStmt':
        if (s.target === 'DISCARD_ALL') cursors.close = 'all';
        return none;
      case 'CallStmt':
        return unknowable('CALL runs a procedure');
      case 'DropStmt': {
        // a schema goes with every table in it; CASCADE takes what depends on the object (a type's columns,
        // a function's defaults, a table's foreign keys and views) in every tenant's tables
        if (s.removeType === 'OBJECT_SCHEMA') return defines(k, s, 'drops a schema and every table in it');
        if (s.behavior === 'DROP_CASCADE') return defines(k, s, 'drops what depends on it too, in tenant tables as well');
        // DROP TRIGGER / POLICY / RULE name ON table: the table is the name list without its last element
        if (['OBJECT_TRIGGER', 'OBJECT_POLICY', 'OBJECT_RULE'].includes(s.removeType)) {
          for (const o of s.objects ?? []) {
            const names: string[] = (o.List?.items ?? []).map(str);
            const relname = names.at(-2);
            if (relname && lookupTable({ relname, schemaname: names.length > 2 ? names.at(-3) : undefined }))
              return defines(k, s, 'changes how isolation works on the table (its row-level security policy, TRUNCATE trigger or rules)');
          }
        }
        if (touchesTenantTable(s)) return schemaChange(`${label(k)} on a tenant table changes every tenant's rows or schema`);
        return none;
      }
      case 'GrantStmt':
        // ON ALL TABLES IN SCHEMA: the tenant tables among them
        if (s.targtype === 'ACL_TARGET_ALL_IN_SCHEMA')
          return schemaChange(`${s.is_grant ? 'GRANT' : 'REVOKE'} on all tables of a schema changes who reaches the tenant tables`);
        if (touchesTenantTable(s)) return schemaChange(`${label(k)} on a tenant table changes every tenant's rows or schema`);
        return none;
      case 'AlterTableStmt': {
        const isolation = (s.cmds ?? []).some((c: Node) => ISOLATION_COMMANDS.has(c.AlterTableCmd?.subtype));
        if (isolation)
          return defines(k, s, 'changes how isolation works on the table (row-level security, triggers, rules, inheritance, owner)');
        if (touchesTenantTable(s)) return schemaChange(`ALTER TABLE on a tenant table changes every tenant's rows or schema`);
        return none;
      }
      case 'RenameStmt':
        if (s.renameType === 'OBJECT_SCHEMA') return defines(k, s, 'renames a schema: it changes which table a name is');
        if (s.newname && tenantNames.includes(s.newname))
          return schemaChange(`a relation renamed to ${s.newname}, a tenant table's name, would take its place`, true);
        if (touchesTenantTable(s)) return schemaChange(`RENAME on a tenant table changes every tenant's rows or schema`);
        return none;
      case 'CreateStmt':
        if (tenantNames.includes(s.relation?.relname))
          return schemaChange(
            `a table named ${s.relation.relname}, a tenant table's name, would take its place for unqualified names`,
            true,
          );
        if (touchesTenantTable(s))
          return schemaChange(`CREATE TABLE on a tenant table (inheritance, partition) changes every tenant's rows`);
        return none;
      case 'CreateSchemaStmt':
        // CREATE SCHEMA s CREATE VIEW v AS ...: each statement inside read as on its own
        for (const element of s.schemaElts ?? []) statement(element, outer);
        return none;
      case 'VariableSetStmt': {
        // settings that change how the auditor must read later statements' strings and table names
        const name = String(s.name ?? '').toLowerCase();
        // (client_encoding, also SET NAMES: the server would decode the bytes of later statements another
        // way than the auditor reads their text — a backslash swallowed by a multibyte character)
        if (['standard_conforming_strings', 'backslash_quote', 'search_path', 'client_encoding'].includes(name))
          return unknowable(`SET ${name} changes how later statements are read`);
        // settings that change who the session is or what row-level security lets through
        if (
          s.kind !== 'VAR_RESET' &&
          (name.startsWith('sequelize_multitenant.') || ['role', 'session_authorization', 'row_security'].includes(name))
        )
          return unknowable(`SET ${name} changes what the session may see`);
        return none;
      }
      case 'ExecuteStmt':
        return unknowable(`EXECUTE ${s.name}: the prepared statement's SQL is not in the statement`);
      case 'DoStmt':
        return unknowable('a DO block runs procedural code');
      case 'CopyStmt': {
        if (s.query) return unknowable('COPY of a query');
        if (s.is_program) return unknowable('COPY ... PROGRAM runs a program');
        const t = s.relation && lookupTable(s.relation);
        if (t) return unknowable(`COPY ${s.is_from ? 'into' : 'out of'} ${t.key}`);
        return none;
      }
      case 'CreateTableAsStmt': {
        if (tenantNames.includes(s.into?.rel?.relname))
          return schemaChange(
            `a table named ${s.into.rel.relname}, a tenant table's name, would take its place for unqualified names`,
            true,
          );
        // CREATE TABLE / MATERIALIZED VIEW ... AS copies rows out of the tenant scope
        const before = g.required.length;
        statement(s.query, outer);
        if (g.required.length > before) unknowable('CREATE ... AS over a tenant table');
        return none;
      }
      case 'CreateFunctionStmt': {
        // Sequelize wraps `findOrCreate`'s INSERT in a pg_temp function: read the INSERT in its body.
        const body: string | undefined = s.options
          ?.map((o: Node) => o.DefElem)
          .find((d: Node) => d?.defname === 'as')
          ?.arg?.List?.items?.map(str)
          .join('');
        const insert = findOrCreateInsert(s, body);
        if (insert !== undefined) {
          // one INSERT, nothing else (a second statement smuggled into its text is not Sequelize's)
          const inner = parse(insert);
          if (inner.length === 1 && kindOf(inner[0]?.stmt) === 'InsertStmt' && !inner[0].stmt.InsertStmt.returningList) {
            walked(inner[0].stmt);
            return none;
          }
        }
        return schemaChange(`${label(k)} defines SQL that runs later, unseen`, functionOverTenant(s, body));
      }
      default: {
        // every other kind by its class (kinds.ts): a kind of no class is refused
        const cls = STATEMENTS[k];
        if (cls === 'harmless') return none;
        if (cls === 'schema') {
          if (touchesTenantTable(s)) return schemaChange(`${label(k)} on a tenant table changes every tenant's rows or schema`);
          return none;
        }
        if (cls === 'defines') return defines(k, s);
        return unknowable(`the auditor does not read ${k || 'this'} statements`);
      }
    }
  }

  /**
   * MERGE INTO target USING source ON cond WHEN ...: the target's rows are matched by the ON condition,
   * so it must constrain them; rows an INSERT action writes, and a SET of the tenant column, carry a
   * current tenant; sub-selects anywhere are analyzed.
   */
  function merge(s: Node, outer: Scope[]): void {
    withClause(s.withClause, outer);
    const scope: Scope = [];
    const scopes = [scope, ...outer];
    const conds: Array<() => void> = [];
    const subqueries: Node[] = [];
    const target = targetOf(s.relation);
    if (target) scope.push(target);
    for (const w of s.mergeWhenClauses ?? []) {
      const clause = w.MergeWhenClause;
      if (clause.commandType === 'CMD_DELETE') cascades(s.relation, 'delete');
      if (clause.commandType === 'CMD_UPDATE')
        cascades(s.relation, { update: (clause.targetList ?? []).map((t: Node) => t.ResTarget?.name) });
    }
    scope.push(...fromItem(s.sourceRelation, scopes, conds, subqueries));
    for (const c of conds) c();
    condition(s.joinCondition, scopes, target?.node !== undefined ? new Set([target.node]) : new Set<number>(), subqueries);
    if (target?.kind === 'tenant') {
      for (const w of s.mergeWhenClauses ?? []) {
        const clause = w.MergeWhenClause;
        if (clause.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE') {
          // (PostgreSQL 17) the target rows the ON does not match — every other tenant's — unless the
          // clause's own condition constrains them
          const n = node();
          g.required.push({ node: n, table: target.table as string });
          condition(clause.condition, [[{ ...target, node: n }]], new Set([n]), subqueries);
        }
        if (clause.commandType === 'CMD_INSERT') {
          const cols: string[] = (clause.targetList ?? []).map((c: Node) => c.ResTarget?.name);
          const at = cols.indexOf(target.column as string);
          if (at < 0) throw new Unscoped(target.table as string, `MERGE ... INSERT into ${target.table} does not set the tenant column`);
          written(target.table as string, clause.values?.[at], scopes);
        } else if (clause.commandType === 'CMD_UPDATE') {
          for (const t of clause.targetList ?? [])
            if (t.ResTarget?.name === target.column) written(target.table as string, t.ResTarget.val, scopes);
        }
      }
    }
    otherSubqueries(s, ['relation', 'sourceRelation', 'joinCondition', 'withClause'], subqueries);
    for (const sq of subqueries) select(sq, scopes);
    if (s.withClause) ctes.pop();
  }

  /** A statement the walker reads whole: every node kind in it is one it reads, and it read every tenant table named in it. */
  const walked = (stmt: Node): Outputs => {
    const k = kindOf(stmt);
    const body = stmt[k];
    const unread = unreadKind(body);
    if (unread) unknowable(`the auditor does not read ${unread} nodes`);
    const out = statement(stmt, []);
    for (const rv of tableReferences(body)) {
      const t = !seen.has(rv) && findTable(rv);
      if (t) unknowable(`${t.key} is named where the auditor does not read it`);
    }
    return out;
  };

  let result: Analysis;
  try {
    const fn = sqlTextFunction(stmts);
    if (fn) unknowable(`${fn}() ${outOfSight(fn)}`);
    const literal = sql === undefined ? undefined : versionDependentLiteral(stmts, sql);
    if (literal) unknowable(`the number ${literal} is read as another value by PostgreSQL before 16 (1_0 as 1 AS _0, 0x1 as 0 AS x1)`);
    for (const raw of stmts) {
      const k = kindOf(raw.stmt);
      if (WALKED.has(k)) walked(raw.stmt);
      else statement(raw.stmt, []);
    }
    result = g.required.length === 0 ? { kind: 'pass' } : { kind: 'graph', graph: g };
  } catch (err) {
    if (err instanceof Unscoped)
      result = err.table ? { kind: 'unscoped', table: err.table, reason: err.reason } : { kind: 'unknowable', reason: err.reason };
    else if (err instanceof SchemaChange)
      result = {
        kind: 'schema',
        reason: `${err.message}: run schema changes outside a tenant (withoutTenant)`,
        definesOverTenant: err.definesOverTenant,
      };
    else throw err;
  }
  if (cursors.declare || cursors.close || cursors.use.length > 0) result.cursors = cursors;
  return result;
}
