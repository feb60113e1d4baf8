// The tenant-aware foreign keys of a schema: from every association between two tenant models, the
// `(tenant, fk) → parent (tenant, key)` key the library creates (or the error that says why it cannot).
import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import { notify } from '../notice';
import { type Actions, action, BEFORE_INSTALL, recordedActions } from './actions';
import { type AssociationLike, associationsOf, fieldOf, metaOf, models, raw, tenantTableOf } from './graph';
import { bare, constraintName, type TableName, tableKey } from './sql';

/** A foreign key the library creates: `(store_id, product_id) → products (store_id, id)`, or one deferred on Citus. */
export interface ForeignKeySpec {
  name: string;
  child: TableName;
  columns: string[];
  parent: TableName;
  parentColumns: string[];
  onDelete: string;
  onUpdate: string;
  /** Composite tenant keys need a unique key on the parent's columns. */
  composite: boolean;
  /** Which model and association it comes from, for messages. */
  source: string;
  /** Why this key cannot be created (an ON DELETE SET NULL written by the application): thrown before any DDL. */
  refused?: MultitenantError;
  /** The model the key belongs to (its child), for errors. */
  model?: string;
  /** The operation for errors: `sync` (default) or the migration helper's name. */
  operation?: string;
  /** True when the application wrote an action on it (preferred over a twin made of defaults). */
  written?: boolean;
  /** The creation order of the association it comes from (the first of two twins wins, as in plain Sequelize); -1 when made before multitenant(). */
  order?: number;
  /** The actions Sequelize's key column holds (written there by the first association, on a parent with a one-column primary key). */
  column?: Actions;
}

/** Integer types compare as one family (an INTEGER and a BIGINT tenant column are one dimension on PostgreSQL). */
const typeFamily = (key: string) => (['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'MEDIUMINT'].includes(key) ? 'integer' : key);

interface ActionSource {
  written: Actions;
  fallback: Actions;
  via: string;
  order?: number;
  column?: Actions;
}

function spec(
  child: AnyModelStatic,
  childMeta: TenantMeta,
  fk: string,
  parent: AnyModelStatic,
  parentMeta: TenantMeta,
  key: string,
  actions: ActionSource,
): ForeignKeySpec {
  const childTable = child.getTableName() as TableName;
  const source = `${child.name} → ${parent.name} (${actions.via})`;
  let onDelete = 'NO ACTION';
  let onUpdate = 'NO ACTION';
  let refused: MultitenantError | undefined;
  let column: Actions | undefined;
  try {
    onDelete = action(actions.written.onDelete, actions.fallback.onDelete, 'onDelete', source, child.name);
    onUpdate = action(actions.written.onUpdate, actions.fallback.onUpdate, 'onUpdate', source, child.name);
    if (actions.column?.onDelete || actions.column?.onUpdate) {
      column = {
        onDelete: action(undefined, actions.column.onDelete, 'onDelete', source, child.name),
        onUpdate: action(undefined, actions.column.onUpdate, 'onUpdate', source, child.name),
      };
    }
  } catch (err) {
    refused = err as MultitenantError;
  }
  return {
    name: constraintName(bare(childTable), childMeta.column, fk, 'fkey'),
    child: childTable,
    columns: [childMeta.column, fk],
    parent: parent.getTableName() as TableName,
    parentColumns: [parentMeta.column, key],
    onDelete,
    onUpdate,
    composite: true,
    source,
    refused,
    model: child.name,
    written: !!(actions.written.onDelete || actions.written.onUpdate),
    order: actions.order ?? Number.MAX_SAFE_INTEGER,
    column,
  };
}

const sameActions = (a: Actions, b: Actions | undefined) => !!b && a.onDelete === b.onDelete && a.onUpdate === b.onUpdate;

/** How much an ON DELETE / ON UPDATE can take away: NO ACTION and RESTRICT delete or change nothing, CASCADE does. */
const reach = (value: string) => (value === 'CASCADE' ? 1 : 0);

/**
 * Two associations made before multitenant() that make one key with different actions: the first one
 * made decides (as in plain Sequelize), and nothing recorded which it was. Sequelize's key column says it
 * when the parent has a one-column primary key (the first association wrote its REFERENCES there); with
 * a composite one it writes none, and the key takes the action that deletes and changes nothing (NO
 * ACTION or RESTRICT over CASCADE), said in a notice with the way to choose.
 */
function firstOfUnrecorded(sequelize: Sequelize, a: ForeignKeySpec, b: ForeignKeySpec): ForeignKeySpec {
  const matching = [a, b].filter((s) => sameActions(s, s.column));
  if (matching.length === 1) return matching[0] as ForeignKeySpec;
  const [chosen, other] = reach(b.onDelete) + reach(b.onUpdate) < reach(a.onDelete) + reach(a.onUpdate) ? [b, a] : [a, b];
  const describe = (s: ForeignKeySpec) => `${s.source}: ON DELETE ${s.onDelete} ON UPDATE ${s.onUpdate}`;
  notify(
    sequelize,
    `${bare(a.child)} (${a.columns.join(', ')}) → ${bare(a.parent)} is the key of two associations made before multitenant() whose actions differ (${describe(chosen)}; ${describe(other)}). In plain Sequelize the first one made decides, and associations made before the plugin was installed do not say which that was: the key gets ON DELETE ${chosen.onDelete} ON UPDATE ${chosen.onUpdate}, which deletes nothing. To choose, write onDelete (and onUpdate) on the hasMany/hasOne, or make the associations after multitenant()`,
  );
  return chosen;
}

/**
 * The tenant-aware foreign keys of every association between two tenant models (the tenant table and
 * global tables excepted): belongsTo / hasOne / hasMany put `(tenant, fk) → parent (tenant, key)` on the
 * child; belongsToMany puts one on the through table towards each side.
 */
export function tenantForeignKeys(sequelize: Sequelize, concerns: (table: string) => boolean = () => true): ForeignKeySpec[] {
  const out = new Map<string, ForeignKeySpec>();
  const add = (s: ForeignKeySpec | undefined) => {
    if (!s) return;
    // one constraint name per table: tables of the same name in two schemas are two tables
    const key = `${tableKey(s.child)}|${s.name}`;
    const twin = out.get(key);
    if (!twin) out.set(key, s);
    else if (tableKey(twin.parent) !== tableKey(s.parent) && !twin.refused) {
      // a polymorphic pair: one column cannot reference two tables (Sequelize would keep one key, silently)
      const column = s.columns[1];
      out.set(key, {
        ...twin,
        refused: new MultitenantError(
          `${bare(s.child)}.${column} is the foreign key of ${twin.source} and of ${s.source}: one column cannot reference both ${bare(twin.parent)} and ${bare(s.parent)}. Declare these associations with constraints: false (a polymorphic key); nothing was created`,
          { model: s.model, operation: 'sync' },
        ),
      });
    } else if (
      s.written === twin.written &&
      s.order === BEFORE_INSTALL &&
      twin.order === BEFORE_INSTALL &&
      !s.refused &&
      !twin.refused &&
      !sameActions(s, twin)
    ) {
      out.set(key, firstOfUnrecorded(sequelize, twin, s));
    } else if ((s.written && !twin.written) || (s.written === twin.written && (s.order ?? 0) < (twin.order ?? 0))) out.set(key, s);
  };
  const pair = (
    child: AnyModelStatic,
    fk: string,
    parent: AnyModelStatic,
    key: string,
    a: AssociationLike,
    actions: Omit<ActionSource, 'via'>,
  ) => {
    const childMeta = tenantMeta(child);
    const parentMeta = tenantMeta(parent);
    if (!childMeta || !parentMeta || parentMeta.isTenantTable || fk === childMeta.column) return undefined;
    if (!concerns(tableKey(child.getTableName() as TableName)) && !concerns(tableKey(parent.getTableName() as TableName))) return undefined;
    const made = spec(child, childMeta, fk, parent, parentMeta, key, { ...actions, via: `${a.associationType} ${a.as}` });
    // two tenant dimensions (store_id beside a text org, or two tenant tables): no key can hold both
    const childTenant = tenantTableOf(sequelize, child, childMeta)?.model;
    const parentTenant = tenantTableOf(sequelize, parent, parentMeta)?.model;
    if (typeFamily(childMeta.typeKey) !== typeFamily(parentMeta.typeKey) || (childTenant && parentTenant && childTenant !== parentTenant)) {
      made.refused = new MultitenantError(
        `${made.source} joins two tenant dimensions (${child.name}.${childMeta.column} ${childMeta.typeKey}, ${parent.name}.${parentMeta.column} ${parentMeta.typeKey}): no foreign key can include both tenant columns. Declare the association with constraints: false; nothing was created`,
        { model: child.name, operation: 'sync' },
      );
    }
    return made;
  };
  /** A belongsToMany between tenant models through a model without tenantKey: its rows could join two tenants. */
  const globalThrough = (a: AssociationLike, through: AnyModelStatic): ForeignKeySpec | undefined => {
    if (metaOf(through) || (!metaOf(a.source) && !metaOf(a.target))) return undefined;
    const table = through.getTableName() as TableName;
    return {
      name: `${bare(table)}_tenant`,
      child: table,
      columns: [],
      parent: a.source.getTableName() as TableName,
      parentColumns: [],
      onDelete: 'NO ACTION',
      onUpdate: 'NO ACTION',
      composite: false,
      source: `${a.source.name} ↔ ${a.target.name}`,
      model: through.name,
      refused: new MultitenantError(
        `${through.name}, the through model of ${a.source.name}.belongsToMany(${a.target.name}), has no tenantKey: its rows could join one tenant's ${a.source.name} to another's ${a.target.name}, and no key of the database would refuse it. Give it the tenant column and tenantKey (or pass through as a string: the library adds them); nothing was created`,
        { model: through.name, operation: 'sync' },
      ),
    };
  };
  for (const model of models(sequelize)) {
    for (const a of associationsOf(model)) {
      if (a.source !== model || a.options.constraints === false) continue;
      const recorded = recordedActions(a);
      switch (a.associationType) {
        case 'BelongsTo':
        case 'HasOne':
        case 'HasMany': {
          const child = a.associationType === 'BelongsTo' ? a.source : a.target;
          const parent = a.associationType === 'BelongsTo' ? a.target : a.source;
          const key = a.associationType === 'BelongsTo' ? fieldOf(a.target, a.targetKey) : fieldOf(a.source, a.sourceKey);
          const onAttribute = recorded.attributes?.[a.foreignKey] ?? {};
          const written = { onDelete: recorded.onDelete ?? onAttribute.onDelete, onUpdate: recorded.onUpdate ?? onAttribute.onUpdate };
          const column = raw(child)[a.foreignKey];
          add(
            pair(child, a.identifierField, parent, key, a, {
              written,
              fallback: recorded.defaults ?? {},
              order: recorded.order,
              column: column && { onDelete: column.onDelete, onUpdate: column.onUpdate },
            }),
          );
          break;
        }
        case 'BelongsToMany': {
          const through = a.through?.model;
          if (!through) break;
          add(globalThrough(a, through));
          const written = { onDelete: recorded.onDelete, onUpdate: recorded.onUpdate };
          const onThrough = recorded.attributes ?? {};
          const cascade = { onDelete: 'CASCADE', onUpdate: 'CASCADE' };
          // Sequelize's order: the association's action first on the source side, the through attribute's first on the target side
          const sourceSide = {
            onDelete: written.onDelete ?? onThrough[a.foreignKey]?.onDelete,
            onUpdate: written.onUpdate ?? onThrough[a.foreignKey]?.onUpdate,
          };
          add(
            pair(through, a.identifierField, a.source, a.sourceKeyField ?? fieldOf(a.source, a.sourceKey), a, {
              written: sourceSide,
              fallback: cascade,
              order: recorded.order,
            }),
          );
          if (a.foreignIdentifierField && a.otherKey) {
            const targetSide = {
              onDelete: onThrough[a.otherKey]?.onDelete ?? written.onDelete,
              onUpdate: onThrough[a.otherKey]?.onUpdate ?? written.onUpdate,
            };
            add(
              pair(through, a.foreignIdentifierField, a.target, a.targetKeyField ?? fieldOf(a.target, a.targetKey), a, {
                written: targetSide,
                fallback: cascade,
                order: recorded.order,
              }),
            );
          }
          break;
        }
      }
    }
  }
  return [...out.values()];
}
