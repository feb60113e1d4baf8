// CREATE TABLE of a tenant model, prepared: the single-column REFERENCES a tenant foreign key replaces
// left out (on Citus every REFERENCES, added back after distribution), the tenant column in
// belongsToMany's UNIQUE (fk, otherKey) and in a generated through model's primary key.
import type { Sequelize } from 'sequelize';
import type { AnyModelStatic } from '../models';
import { tenantMeta } from '../models';
import { action } from './actions';
import { type ForeignKeySpec, tenantForeignKeys } from './foreign-keys';
import { isReference, type Raw } from './graph';
import { bare, constraintName, type TableName, tableKey } from './sql';
import { hasThroughAutoKey, throughUniqueKeyNames } from './through';

/** On Citus, single-column foreign keys of distributed / reference tables wait until both ends are distributed. */
const deferred = new WeakMap<Sequelize, Map<string, ForeignKeySpec>>();
export function deferredOf(sequelize: Sequelize): Map<string, ForeignKeySpec> {
  const map = deferred.get(sequelize) ?? new Map<string, ForeignKeySpec>();
  deferred.set(sequelize, map);
  return map;
}

export type Attributes = Record<string, Raw[string] & { references?: { model: TableName | { getTableName(): TableName }; key?: string } }>;

/**
 * Before CREATE TABLE: drop the single-column `REFERENCES` that a tenant foreign key replaces (and, on
 * Citus, every `REFERENCES` of a table about to be distributed: they are added back after distribution),
 * and put the tenant column into belongsToMany's `UNIQUE (fk, otherKey)`.
 */
export function prepareCreateTable(
  sequelize: Sequelize,
  model: AnyModelStatic,
  attributes: Attributes,
  options: { uniqueKeys?: Record<string, { fields: string[] }> } & Record<string, unknown>,
  citus: boolean,
): { attributes: Attributes; options: typeof options } {
  const meta = tenantMeta(model);
  const distributed = citus && (!!meta || isReference(model));
  const own = tableKey(model.getTableName() as TableName);
  const mine = tenantForeignKeys(sequelize, (table) => table === own).filter((s) => tableKey(s.child) === own);
  const refused = mine.find((s) => s.refused)?.refused;
  if (refused) throw refused;
  const replaced = new Set(mine.map((s) => s.columns[1]));
  const nextAttributes: Attributes = { ...attributes };
  for (const [name, def] of Object.entries(attributes)) {
    if (!def?.references) continue;
    const column = def.field ?? name;
    if (!replaced.has(column) && !distributed) continue;
    const { references, onDelete, onUpdate, ...rest } = def;
    nextAttributes[name] = rest;
    if (!replaced.has(column) && references) {
      const ref = references.model as TableName | { getTableName(): TableName };
      const parent = typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName);
      const childTable = model.getTableName() as TableName;
      const s: ForeignKeySpec = {
        name: constraintName(bare(childTable), column, 'fkey'),
        child: childTable,
        columns: [column],
        parent,
        parentColumns: [references.key ?? 'id'],
        onDelete:
          (meta && column === meta.column ? action(undefined, onDelete, 'onDelete', model.name, model.name) : onDelete) ?? 'NO ACTION',
        onUpdate:
          (meta && column === meta.column ? action(undefined, onUpdate, 'onUpdate', model.name, model.name) : onUpdate) ?? 'NO ACTION',
        composite: false,
        source: `${model.name}.${name}`,
      };
      deferredOf(sequelize).set(`${tableKey(s.child)}|${s.name}`, s);
    }
  }
  if (meta && hasThroughAutoKey(model)) {
    const def = nextAttributes[meta.attribute] ?? attributes[meta.attribute];
    nextAttributes[meta.attribute] = { ...def, primaryKey: true, allowNull: false } as Attributes[string];
  }
  let nextOptions = options;
  if (meta) {
    const keys = { ...(options.uniqueKeys ?? (model as unknown as { uniqueKeys: Record<string, { fields: string[] }> }).uniqueKeys) };
    let changed = false;
    for (const name of throughUniqueKeyNames(model)) {
      const key = keys[name];
      if (key && !key.fields.includes(meta.column)) {
        keys[name] = { ...key, fields: [meta.column, ...key.fields] };
        changed = true;
      }
    }
    if (changed) nextOptions = { ...options, uniqueKeys: keys };
  }
  return { attributes: nextAttributes, options: nextOptions };
}
