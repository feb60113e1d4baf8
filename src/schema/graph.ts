// The models of one Sequelize instance as the schema layer reads them: their raw attributes, their
// associations, and the tenant table each tenant model belongs to.
import type { Sequelize } from 'sequelize';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';

/** An association as Sequelize holds it (the fields the schema layer reads). */
export interface AssociationLike {
  associationType: 'BelongsTo' | 'HasOne' | 'HasMany' | 'BelongsToMany';
  source: AnyModelStatic;
  target: AnyModelStatic;
  as: string;
  identifierField: string;
  foreignIdentifierField?: string;
  targetKey?: string;
  sourceKey?: string;
  sourceKeyField?: string;
  targetKeyField?: string;
  foreignKey: string;
  otherKey?: string;
  options: { constraints?: boolean; onDelete?: string; onUpdate?: string; uniqueKey?: string };
  through?: { model: AnyModelStatic; unique?: boolean };
}

export type Raw = Record<string, { field?: string; allowNull?: boolean; onDelete?: string; onUpdate?: string; references?: unknown }>;
export const raw = (model: AnyModelStatic) => (model as unknown as { rawAttributes: Raw }).rawAttributes;
export const fieldOf = (model: AnyModelStatic, attr: string | undefined) => (attr ? (raw(model)[attr]?.field ?? attr) : attr) as string;
export const models = (sequelize: Sequelize) =>
  (sequelize as unknown as { modelManager: { models: AnyModelStatic[] } }).modelManager.models;

/** tenantMeta, or undefined for a tenantKey that names nothing yet (reported where the model is used). */
export const metaOf = (model: AnyModelStatic): TenantMeta | undefined => {
  try {
    return tenantMeta(model);
  } catch {
    return undefined;
  }
};
/** True for a global model marked `referenceTable: true` (a Citus reference table). */
export const isReference = (model: AnyModelStatic): boolean =>
  !!(model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable;
export const associationsOf = (model: AnyModelStatic) =>
  Object.values((model as unknown as { associations: Record<string, AssociationLike> }).associations ?? {});

/** The tenant table model a tenant model belongs to: the one its tenant column points to, else the only one. */
export function tenantTableOf(
  sequelize: Sequelize,
  model: AnyModelStatic,
  meta: TenantMeta,
): { model: AnyModelStatic; declared: boolean } | undefined {
  if (meta.isTenantTable) return undefined;
  for (const a of associationsOf(model)) {
    if (a.associationType === 'BelongsTo' && a.identifierField === meta.column && tenantMeta(a.target)?.isTenantTable)
      return { model: a.target, declared: true };
  }
  const tenantTables = models(sequelize).filter((m) => metaOf(m)?.isTenantTable);
  if (tenantTables.length === 1) return { model: tenantTables[0] as AnyModelStatic, declared: false };
  // Several models keyed by the tenant column alone (a 1:1 per-store table beside stores): the tenant
  // table is the one that makes new ids, or the one tenant columns point to.
  const generating = tenantTables.filter((m) => {
    const meta = metaOf(m);
    return !!meta && !!(raw(m)[meta.attribute] as { autoIncrement?: boolean } | undefined)?.autoIncrement;
  });
  if (generating.length === 1) return { model: generating[0] as AnyModelStatic, declared: false };
  const pointedTo = new Set<AnyModelStatic>();
  for (const m of models(sequelize)) {
    const meta = metaOf(m);
    for (const a of associationsOf(m)) {
      if (meta && a.associationType === 'BelongsTo' && a.identifierField === meta.column && metaOf(a.target)?.isTenantTable)
        pointedTo.add(a.target);
    }
  }
  return pointedTo.size === 1 ? { model: [...pointedTo][0] as AnyModelStatic, declared: false } : undefined;
}
