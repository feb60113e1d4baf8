import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { tenantMeta } from '../models';
import type { PluginState } from '../state';
import { canonicalCondition, canonicalIncludes } from './closed';
import { activeScope, guarded, rememberReadTenant, type Scope, scopedWhere, selects } from './scope';
import { scopingModel } from './tables';
import type { QueryInterfaceInternals } from './writes';

type SelectOptions = Parameters<QueryInterfaceInternals['select']>[2] & {
  raw?: boolean;
  include?: unknown[];
  attributes?: unknown[];
  subQuery?: boolean;
  limit?: number;
  hasMultiAssociation?: boolean;
};

/**
 * With include + limit, Sequelize selects the root in a subquery and joins the includes outside it:
 * the co-location equality needs the root's tenant column there, under its attribute name. Select it
 * when the application's `attributes` left it out (Sequelize's own key completion would add a
 * composite key's tenant column reversed — `"storeId" AS "store_id"` — for a `field:`-mapped column).
 */
function withTenantSelected(options: SelectOptions, model: Parameters<typeof tenantMeta>[0]): SelectOptions {
  const subQuery = options.subQuery === undefined ? !!options.limit && !!options.hasMultiAssociation : options.subQuery;
  if (!subQuery || !options.include?.length || !Array.isArray(options.attributes)) return options;
  const meta = tenantMeta(model);
  if (!meta) return options;
  if (selects(options.attributes, meta.attribute)) return options;
  const attribute = meta.attribute === meta.column ? meta.column : [meta.column, meta.attribute];
  return { ...options, attributes: [...options.attributes, attribute] };
}

/**
 * The root WHERE of every read: `select` (findAll, findOne, findByPk, findAndCountAll, reload,
 * association getters) and `rawSelect` (count, max, min, sum, aggregate). Both receive options whose
 * `where` already uses column names. Joins are scoped where Sequelize builds them (includes.ts).
 */
/** `select(null, ['products', 'stores'])` is a cross join no predicate of ours reaches: refused under a scope. */
function assertOneTable(tableName: unknown, scope: Scope): void {
  if (!Array.isArray(tableName)) return;
  throw new MultitenantError(
    `a select from several tables includes the tenant table of ${scope.meta.name} and cannot be scoped: query the model with include, or run it inside withoutTenant; nothing was sent`,
    scope.details,
  );
}

interface IncludeModels {
  model?: AnyModelStatic;
  through?: { model?: AnyModelStatic };
  include?: IncludeModels[];
}

export function patchReads(qi: QueryInterfaceInternals, state: PluginState): void {
  const sequelize = qi.sequelize;
  /** The scope of the first tenant model joined anywhere in the include tree. */
  const includedScope = (includes: unknown, operation: string): Scope | undefined => {
    if (!Array.isArray(includes)) return undefined;
    for (const include of includes as IncludeModels[]) {
      for (const model of [include?.model, include?.through?.model]) {
        const scope = model && activeScope(state, scopingModel(sequelize, model, model.getTableName()), operation, 'read');
        if (scope) return scope;
      }
      const nested = includedScope(include?.include, operation);
      if (nested) return nested;
    }
    return undefined;
  };
  /**
   * A statement that touches a tenant table anywhere has all its conditions checked and replaced by
   * their canonical copies (closed.ts) — the root where (also of a global root) and every include's
   * on / where / through.where. Returns the options to send.
   */
  const checkConditions = <O extends { where?: unknown; include?: unknown } | undefined>(
    options: O,
    scope: Scope | undefined,
    operation: string,
  ): O => {
    if (!options?.include) return options;
    const statementScope = scope ?? includedScope(options.include, operation);
    if (!statementScope) return options;
    canonicalIncludes(options.include, statementScope);
    // a scoped root gets its where from scopedWhere; a global root's is copied here
    return scope || options.where === undefined ? options : { ...options, where: canonicalCondition(options.where, statementScope) };
  };
  const select = qi.select;
  qi.select = function scopedSelect(model, tableName, options) {
    return guarded(() => {
      const scope = activeScope(state, scopingModel(sequelize, model, tableName), 'find', 'read');
      if (scope) assertOneTable(tableName, scope);
      const checked = checkConditions(options as SelectOptions, scope, 'find');
      const selected = withTenantSelected(checked, model);
      if (!scope) return select.call(this, model, tableName, selected);
      const sent = select.call(this, model, tableName, { ...selected, where: scopedWhere(selected.where, scope) });
      // Instances read without their tenant column cannot say whose they are: remember it for writes through
      // them — the root's, and the included rows' at every level.
      const rootHasTenant = !Array.isArray(selected.attributes) || selects(selected.attributes, scope.meta.attribute);
      if (selected.raw || (rootHasTenant && !selected.include?.length)) return sent;
      return sent.then((rows) => {
        rememberReadTenant(rows, scope);
        return rows;
      });
    });
  };

  const rawSelect = qi.rawSelect;
  qi.rawSelect = function scopedRawSelect(tableName, options, attributeSelector, model) {
    return guarded(() => {
      const scope = activeScope(state, scopingModel(sequelize, model, tableName), 'aggregate', 'read');
      if (scope) assertOneTable(tableName, scope);
      const checked = checkConditions(options, scope, 'aggregate');
      if (!scope) return rawSelect.call(this, tableName, checked, attributeSelector, model);
      return rawSelect.call(this, tableName, { ...checked, where: scopedWhere(checked?.where, scope) }, attributeSelector, model);
    });
  };
}
