import { Op, type Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import type { PluginState } from '../state';
import { closed } from './closed';
import { activeScope, type Scope, selects, tenantPredicate } from './scope';
import { scopingModel } from './tables';

// The parts of Sequelize's validated include tree and of its query generator the join patch reads.
interface Include {
  model: AnyModelStatic;
  as: string;
  parent?: Include;
  association?: unknown;
  subQuery?: boolean;
  subQueryFilter?: boolean;
  or?: boolean;
  right?: boolean;
  required?: boolean;
  on?: unknown;
  where?: unknown;
  through?: { model: AnyModelStatic; as: string; where?: unknown };
}
interface TopLevelInfo {
  subQuery?: boolean;
  options: { model: AnyModelStatic; attributes?: unknown[]; groupedLimit?: unknown };
}
interface JoinResult {
  join: string;
  body: string;
  condition: string;
  attributes: { main: string[]; subQuery: string[] };
}
interface IncludeAs {
  internalAs: string;
  externalAs: string;
}
export interface GeneratorInternals {
  sequelize: Sequelize;
  quoteIdentifier(name: string, force?: boolean): string;
  quoteTable(name: unknown, alias?: unknown): string;
  whereItemsQuery(where: unknown, options: { prefix?: unknown; model?: AnyModelStatic }): string;
  _getAliasForField(tableName: string, field: string, options: unknown): string | null;
  generateJoin(include: Include, topLevelInfo: TopLevelInfo): JoinResult;
  generateThroughJoin(include: Include, includeAs: IncludeAs, parentTableName: string, topLevelInfo: TopLevelInfo): JoinResult;
  _generateSubQueryFilter(include: Include, includeAs: IncludeAs, topLevelInfo: TopLevelInfo): void;
}

/** `"alias"."store_id" = 7` (or `IN (...)`), escaped by Sequelize itself. */
function predicateSql(g: GeneratorInternals, alias: string, scope: Scope): string {
  return g.whereItemsQuery(tenantPredicate(scope), { prefix: g.sequelize.literal(g.quoteIdentifier(alias)), model: scope.meta.model });
}

/**
 * How the parent's tenant column is referred to from this join's ON — by the same rules Sequelize uses
 * for the parent's key in `generateJoin`: when the parent sits inside the `limit` subquery and this join
 * is outside it, the subquery exposes the parent's columns under their attribute names (and the root's
 * tenant column is added to the subquery's select list if the query did not select it).
 */
function parentTenantRef(
  g: GeneratorInternals,
  include: Include,
  parentAlias: string,
  parentMeta: TenantMeta,
  topLevelInfo: TopLevelInfo,
  result: JoinResult,
): string {
  const parent = include.parent as Include;
  const parentIsTop = !parent.association && parent.model.name === topLevelInfo.options.model.name;
  const exposed = (topLevelInfo.options.groupedLimit && parentIsTop) || (topLevelInfo.subQuery && parent.subQuery && !include.subQuery);
  if (!exposed) return `${g.quoteTable(parentAlias)}.${g.quoteIdentifier(parentMeta.column)}`;
  if (parentIsTop) {
    const table = g.quoteTable(parent.as || parent.model.name);
    const ref =
      g._getAliasForField(table, parentMeta.attribute, topLevelInfo.options) || `${table}.${g.quoteIdentifier(parentMeta.attribute)}`;
    if (topLevelInfo.subQuery && !selects(topLevelInfo.options.attributes, parentMeta.attribute)) {
      const column = `${table}.${g.quoteIdentifier(parentMeta.column)}`;
      const exposedAs = column === ref ? column : `${column} AS ${g.quoteIdentifier(parentMeta.attribute)}`;
      if (!result.attributes.subQuery.includes(exposedAs)) result.attributes.subQuery.push(exposedAs);
    }
    return ref;
  }
  const source = `${parentAlias.replace(/->/g, '.')}.${parentMeta.attribute}`;
  return g._getAliasForField(parentAlias, source, topLevelInfo.options) || g.quoteIdentifier(source);
}

/** The alias Sequelize gives an include's parent and the include itself (generateJoin's own rule). */
function joinAliases(include: Include): { parentAlias: string; alias: string } {
  let path: string | undefined;
  let p: Include | undefined = include.parent;
  while (p?.association) {
    path = path ? `${p.as}->${path}` : p.as;
    p = p.parent;
  }
  if (!path) {
    const parent = include.parent as Include;
    return { parentAlias: parent.as || parent.model.name, alias: include.as };
  }
  return { parentAlias: path, alias: `${path}->${include.as}` };
}

/** `(<where>) AND <conditions>`: the application's where as one closed term (closed.ts). */
function and(where: unknown, ...conditions: unknown[]): unknown {
  return where === undefined || where === null ? { [Op.and]: conditions } : { [Op.and]: [closed(where), ...conditions] };
}

/**
 * A RIGHT OUTER JOIN keeps every row of its right side whatever the ON says: the tenant predicate in the
 * ON would filter nothing there. The joined table is replaced by the tenant's rows of it.
 */
function rightSideFiltered(g: GeneratorInternals, include: Include, alias: string, scope: Scope): string {
  const table = g.quoteTable(include.model.getTableName());
  const predicate = g.whereItemsQuery(tenantPredicate(scope), { model: scope.meta.model });
  return `(SELECT * FROM ${table} WHERE ${predicate}) AS ${g.quoteIdentifier(alias)}`;
}

/**
 * `( through INNER JOIN target ON <on>)` becomes `( through INNER JOIN target ON (<on>) AND <conditions>)`:
 * the ON, which carries the application's through.where, closed as one term before the tenant conditions.
 */
function innerJoinScoped(
  g: GeneratorInternals,
  body: string,
  include: Include,
  targetAs: string,
  conditions: string[],
  scope: Scope,
): string {
  const marker = ` INNER JOIN ${g.quoteTable(include.model.getTableName(), targetAs)} ON `;
  const at = body.indexOf(marker);
  if (at < 0 || !body.endsWith(')')) {
    throw new MultitenantError(
      `cannot scope the belongsToMany join of ${include.as} (${body.slice(0, 80)}…); nothing was sent`,
      scope.details,
    );
  }
  const on = body.slice(at + marker.length, -1);
  return `${body.slice(0, at + marker.length)}(${on}) AND ${conditions.join(' AND ')})`;
}

/**
 * (The raw SQL of every include's conditions was checked for closedness before the statement was built:
 * reads.ts, canonicalIncludes.)
 * Every JOIN of a tenant model gets, in its ON: the tenant predicate (when a tenant scopes the query)
 * and the co-location equality `child.tenant = parent.tenant` (when both are tenant models, also with
 * no tenant: it is what Citus needs to push the join down). Conditions are added to the ON, never as an
 * include `where`, so a LEFT JOIN stays LEFT. The correlated subqueries Sequelize builds for `required`
 * includes under a `limit` get the same two conditions.
 */
export function patchIncludes(g: GeneratorInternals, state: PluginState): void {
  // The table decides, as for the query interface: a model without tenantKey on a tenant table is scoped.
  // (An include tree built by hand may hold Sequelize's base Model, which belongs to no instance and has no table.)
  const tenantModel = (model: AnyModelStatic) =>
    (model as { sequelize?: unknown } | undefined)?.sequelize
      ? (scopingModel(g.sequelize, model, model.getTableName()) as AnyModelStatic | undefined)
      : undefined;
  const metaOf = (model: AnyModelStatic) => {
    const found = tenantModel(model);
    return found && tenantMeta(found);
  };
  const scopeOf = (model: AnyModelStatic) => {
    const found = tenantModel(model);
    return found && activeScope(state, found, 'find', 'read');
  };

  const generateJoin = g.generateJoin;
  g.generateJoin = function scopedJoin(include, topLevelInfo) {
    const childMeta = metaOf(include.model);
    if (!childMeta || !include.parent) return generateJoin.call(this, include, topLevelInfo);
    const scope = scopeOf(include.model);
    let result = generateJoin.call(this, include, topLevelInfo);
    const { parentAlias, alias } = joinAliases(include);
    const parts: string[] = [];
    if (scope) parts.push(predicateSql(this, alias, scope));
    if (scope && include.right && !include.required && /RIGHT/i.test(result.join)) {
      result = { ...result, body: rightSideFiltered(this, include, alias, scope) };
    }
    const parentMeta = metaOf(include.parent.model);
    if (parentMeta) {
      const ref = parentTenantRef(this, include, parentAlias, parentMeta, topLevelInfo, result);
      parts.push(`${ref} = ${this.quoteIdentifier(alias)}.${this.quoteIdentifier(childMeta.column)}`);
    }
    if (parts.length === 0) return result;
    return { ...result, condition: `(${result.condition}) AND ${parts.join(' AND ')}` };
  };

  // belongsToMany: `parent LEFT JOIN (through INNER JOIN target ON ...) ON ...`. The inner ON cannot see
  // the parent: it ties through and target (predicates + co-location); the outer ON ties parent and through.
  const generateThroughJoin = g.generateThroughJoin;
  g.generateThroughJoin = function scopedThroughJoin(include, includeAs, parentTableName, topLevelInfo) {
    const through = include.through;
    if (!through || !include.parent) return generateThroughJoin.call(this, include, includeAs, parentTableName, topLevelInfo);
    const throughMeta = metaOf(through.model);
    const targetMeta = metaOf(include.model);
    const throughScope = throughMeta && scopeOf(through.model);
    const targetScope = targetMeta && scopeOf(include.model);
    const anyScope = throughScope || targetScope;
    const result = generateThroughJoin.call(this, include, includeAs, parentTableName, topLevelInfo);
    const throughAs = `${includeAs.internalAs}->${through.as}`;
    const targetAs = includeAs.internalAs;
    const inner: string[] = [];
    if (throughScope) inner.push(predicateSql(this, throughAs, throughScope));
    if (targetScope) inner.push(predicateSql(this, targetAs, targetScope));
    if (throughMeta && targetMeta) {
      inner.push(
        `${this.quoteIdentifier(targetAs)}.${this.quoteIdentifier(targetMeta.column)} = ${this.quoteIdentifier(throughAs)}.${this.quoteIdentifier(throughMeta.column)}`,
      );
    }
    let { body, condition } = result;
    if (inner.length > 0) body = innerJoinScoped(this, body, include, targetAs, inner, anyScope as Scope);
    const parentMeta = metaOf(include.parent.model);
    if (parentMeta && throughMeta) {
      const ref = parentTenantRef(this, include, parentTableName, parentMeta, topLevelInfo, result);
      condition = `(${condition}) AND ${ref} = ${this.quoteIdentifier(throughAs)}.${this.quoteIdentifier(throughMeta.column)}`;
    }
    return { ...result, body, condition };
  };

  // `required` includes under a `limit`: Sequelize filters the root inside its subquery with
  // `(SELECT ... FROM child WHERE child.fk = root.pk AND <include.where> LIMIT 1) IS NOT NULL`, built
  // from the include directly below the root. Its where (or its through table's) carries the conditions
  // for the time of that call.
  const subQueryFilter = g._generateSubQueryFilter;
  g._generateSubQueryFilter = function scopedSubQueryFilter(include, includeAs, topLevelInfo) {
    if (!topLevelInfo.subQuery || !include.subQueryFilter) return subQueryFilter.call(this, include, includeAs, topLevelInfo);
    let top = include;
    while (top.parent?.parent) top = top.parent;
    const root = top.parent as Include;
    const rootMeta = metaOf(root.model);
    const rootColumn = (meta: TenantMeta) => `${this.quoteTable(root.as || root.model.name)}.${this.quoteIdentifier(meta.column)}`;
    const target = top.through ?? top;
    const meta = metaOf(target.model);
    if (!meta) return subQueryFilter.call(this, include, includeAs, topLevelInfo);
    const alias = top.through ? top.through.model.name : top.as;
    const conditions: unknown[] = [];
    const scope = scopeOf(target.model);
    if (scope) conditions.push(tenantPredicate(scope));
    if (rootMeta) {
      conditions.push(
        this.sequelize.literal(`${this.quoteIdentifier(alias)}.${this.quoteIdentifier(meta.column)} = ${rootColumn(rootMeta)}`),
      );
    }
    if (conditions.length === 0) return subQueryFilter.call(this, include, includeAs, topLevelInfo);
    const before = target.where;
    target.where = and(before, ...conditions);
    try {
      return subQueryFilter.call(this, include, includeAs, topLevelInfo);
    } finally {
      target.where = before;
    }
  };
}
