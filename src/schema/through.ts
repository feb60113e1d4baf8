// belongsToMany through models: the tenant column of a generated through model, the UNIQUE (fk, otherKey)
// Sequelize gives them, and the primary key it makes of the two foreign keys.
import type { Sequelize } from 'sequelize';
import { type AnyModelStatic, tenantMeta } from '../models';
import { type AssociationLike, associationsOf, models, type Raw, raw } from './graph';

/**
 * `belongsToMany(Tag, { through: 'product_tags' })`: Sequelize generates the through model with the
 * source's options — `tenantKey` included — but not the tenant column. It gets it here, typed as the
 * source's, so that the through table is a tenant table like one declared as a model.
 */
export function giveTenantColumn(association: AssociationLike): void {
  const through = association.through?.model as
    | (AnyModelStatic & { refreshAttributes(): void; options: { tenantKey?: string } })
    | undefined;
  const tenantKey = through?.options.tenantKey;
  if (!through || !tenantKey || raw(through)[tenantKey]) return;
  const sourceMeta = tenantMeta(association.source);
  if (!sourceMeta) return;
  const type = (raw(association.source)[sourceMeta.attribute] as { type?: unknown } | undefined)?.type;
  raw(through)[tenantKey] = { type, allowNull: false, field: sourceMeta.column } as Raw[string];
  through.refreshAttributes();
}

/** At install: the through models Sequelize generated for associations made before multitenant(). */
export function giveTenantColumns(sequelize: Sequelize): void {
  for (const model of models(sequelize)) {
    for (const a of associationsOf(model)) if (a.associationType === 'BelongsToMany' && a.source === model) giveTenantColumn(a);
  }
}

/** The names Sequelize gives the `UNIQUE (fk, otherKey)` of belongsToMany through tables that are `model`. */
export function throughUniqueKeyNames(model: AnyModelStatic): string[] {
  const sequelize = (model as unknown as { sequelize?: Sequelize }).sequelize;
  if (!sequelize) return [];
  const names: string[] = [];
  for (const m of models(sequelize)) {
    for (const a of associationsOf(m)) {
      if (a.associationType !== 'BelongsToMany' || a.through?.model !== model || a.through.unique === false) continue;
      names.push(
        a.options.uniqueKey || [(model as unknown as { tableName: string }).tableName, a.foreignKey, a.otherKey, 'unique'].join('_'),
      );
    }
  }
  return names;
}

/**
 * True for a belongsToMany through model whose primary key Sequelize made of the two foreign keys
 * (no key of its own): the library adds the tenant column to it when creating the table.
 */
export function hasThroughAutoKey(model: AnyModelStatic): boolean {
  const sequelize = (model as unknown as { sequelize?: Sequelize }).sequelize;
  const pk = (model as unknown as { primaryKeyAttributes: string[] }).primaryKeyAttributes;
  if (!sequelize) return false;
  for (const m of models(sequelize)) {
    for (const a of associationsOf(m)) {
      if (a.associationType !== 'BelongsToMany' || a.through?.model !== model) continue;
      const keys = [a.foreignKey, a.otherKey];
      if (pk.length === 2 && keys.every((k) => k && pk.includes(k))) return true;
    }
  }
  return false;
}
