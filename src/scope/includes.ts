import { Op, type Sequelize } from 'sequelize';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import type { PluginState } from '../plugin';
import { activeScope, type Scope, tenantPredicate } from './scope';

// The parts of Sequelize's validated include tree and of its query generator the join patch reads.
interface Include {
  model: AnyModelStatic;
  as: string;
  parent?: Include;
  association?: unknown;
  subQuery?: boolean;
  subQueryFilter?: boolean;
  or?: boolean;
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

/** Is `attribute` among the (mapped) attributes a query selects: `'a'` or `['column', 'a']`? */
function selects(attributes: unknown[] | undefined, attribute: string): boolean {
  return !!attributes?.some((a) => a === attribute || (Array.isArray(a) && a[1] === attribute));
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

function and(where: unknown, ...conditions: unknown[]): unknown {
  const parts = where === undefined || where === null ? conditions : [where, ...conditions];
  return parts.length === 1 ? parts[0] : { [Op.and]: parts };
}

/**
 * Every JOIN of a tenant model gets, in its ON: the tenant predicate (when a tenant scopes the query)
 * and the co-location equality `child.tenant = parent.tenant` (when both are tenant models, also with
 * no tenant: it is what Citus needs to push the join down). Conditions are added to the ON, never as an
 * include `where`, so a LEFT JOIN stays LEFT. The correlated subqueries Sequelize builds for `required`
 * includes under a `limit` get the same two conditions.
 */
export function patchIncludes(g: GeneratorInternals, state: PluginState): void {
  const generateJoin = g.generateJoin;
  g.generateJoin = function scopedJoin(include, topLevelInfo) {
    const result = generateJoin.call(this, include, topLevelInfo);
    const childMeta = tenantMeta(include.model);
    if (!childMeta || !include.parent) return result;
    const { parentAlias, alias } = joinAliases(include);
    const parts: string[] = [];
    const scope = activeScope(state, include.model, 'find', 'read');
    if (scope) parts.push(predicateSql(this, alias, scope));
    const parentMeta = tenantMeta(include.parent.model);
    if (parentMeta) {
      const ref = parentTenantRef(this, include, parentAlias, parentMeta, topLevelInfo, result);
      parts.push(`${ref} = ${this.quoteIdentifier(alias)}.${this.quoteIdentifier(childMeta.column)}`);
    }
    if (parts.length === 0) return result;
    const condition = include.or ? `(${result.condition})` : result.condition;
    return { ...result, condition: `${condition} AND ${parts.join(' AND ')}` };
  };

  // belongsToMany: `parent LEFT JOIN (through INNER JOIN target ON ...) ON ...`. The inner ON cannot see
  // the parent: it ties through and target (predicates + co-location); the outer ON ties parent and through.
  const generateThroughJoin = g.generateThroughJoin;
  g.generateThroughJoin = function scopedThroughJoin(include, includeAs, parentTableName, topLevelInfo) {
    const result = generateThroughJoin.call(this, include, includeAs, parentTableName, topLevelInfo);
    const through = include.through;
    if (!through || !include.parent) return result;
    const throughMeta = tenantMeta(through.model);
    const targetMeta = tenantMeta(include.model);
    const throughAs = `${includeAs.internalAs}->${through.as}`;
    const targetAs = includeAs.internalAs;
    const inner: string[] = [];
    const throughScope = throughMeta && activeScope(state, through.model, 'find', 'read');
    if (throughScope) inner.push(predicateSql(this, throughAs, throughScope));
    const targetScope = targetMeta && activeScope(state, include.model, 'find', 'read');
    if (targetScope) inner.push(predicateSql(this, targetAs, targetScope));
    if (throughMeta && targetMeta) {
      inner.push(
        `${this.quoteIdentifier(targetAs)}.${this.quoteIdentifier(targetMeta.column)} = ${this.quoteIdentifier(throughAs)}.${this.quoteIdentifier(throughMeta.column)}`,
      );
    }
    let { body, condition } = result;
    if (inner.length > 0 && body.endsWith(')')) body = `${body.slice(0, -1)} AND ${inner.join(' AND ')})`;
    const parentMeta = tenantMeta(include.parent.model);
    if (parentMeta && throughMeta) {
      const ref = parentTenantRef(this, include, parentTableName, parentMeta, topLevelInfo, result);
      condition = `${condition} AND ${ref} = ${this.quoteIdentifier(throughAs)}.${this.quoteIdentifier(throughMeta.column)}`;
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
    const rootMeta = tenantMeta(root.model);
    const rootColumn = (meta: TenantMeta) => `${this.quoteTable(root.as || root.model.name)}.${this.quoteIdentifier(meta.column)}`;
    const target = top.through ?? top;
    const meta = tenantMeta(target.model);
    if (!meta) return subQueryFilter.call(this, include, includeAs, topLevelInfo);
    const alias = top.through ? top.through.model.name : top.as;
    const conditions: unknown[] = [];
    const scope = activeScope(state, target.model, 'find', 'read');
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
