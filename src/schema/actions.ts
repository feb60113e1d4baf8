// The ON DELETE / ON UPDATE of tenant foreign keys: what the application wrote on each association
// (recorded before Sequelize writes its own defaults into the same objects), and what Citus and
// PostgreSQL accept on a key that includes the tenant column.
import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { type StaticMethod, wrapStatic } from '../statics';
import { type AssociationLike, raw } from './graph';
import { giveTenantColumn } from './through';

export type Actions = { onDelete?: string; onUpdate?: string };
/** What the application wrote for one association: on the association, and on the key attributes. */
export interface Written extends Actions {
  /** Actions the application wrote on the attributes of the model holding the key (the through model for belongsToMany). */
  attributes?: Record<string, Actions>;
  /** Sequelize's own defaults for this association, computed as it computes them (from the attributes before it ran). */
  defaults?: Actions;
  /** Creation order: when two associations make one key, the first one's actions are the column's, as in plain Sequelize. */
  order?: number;
}
let associationCount = 0;
/** The order of an association made before multitenant(): nothing recorded when it was made. */
export const BEFORE_INSTALL = -1;
/** onDelete / onUpdate as the application wrote them, recorded when the association is made. */
const given = new WeakMap<object, Written>();
/** Option objects already passed to an association: Sequelize writes its defaults into them, so the first sight counts. */
const firstSight = new WeakMap<object, Actions>();
/** The actions Sequelize itself wrote into a through model's attributes (not the application's). */
const sequelizeWrote = new WeakMap<object, Map<string, Actions>>();
const patchedFactories = new WeakSet<object>();

/**
 * The actions of an association made before multitenant() was installed (nothing recorded them):
 * Sequelize has written its defaults into belongsTo / hasOne options, so a value that may be one of its
 * defaults counts as a default, anything else as written; hasMany and belongsToMany leave the options
 * as the application wrote them.
 */
function inferred(a: AssociationLike): Written {
  const o = a.options;
  if (a.associationType === 'HasMany') {
    const nullable = raw(a.target)[a.foreignKey]?.allowNull !== false;
    return {
      onDelete: o.onDelete,
      onUpdate: o.onUpdate,
      defaults: { onDelete: nullable ? 'SET NULL' : 'CASCADE', onUpdate: 'CASCADE' },
      order: BEFORE_INSTALL,
    };
  }
  if (a.associationType === 'BelongsToMany') return { onDelete: o.onDelete, onUpdate: o.onUpdate, order: BEFORE_INSTALL };
  const mayBeDefault = (value: string | undefined, defaults: string[]) => !value || defaults.includes(normalizeAction(value));
  return {
    onDelete: mayBeDefault(o.onDelete, ['SET NULL', 'NO ACTION', 'CASCADE']) ? undefined : o.onDelete,
    onUpdate: mayBeDefault(o.onUpdate, ['CASCADE']) ? undefined : o.onUpdate,
    defaults: { onDelete: o.onDelete, onUpdate: o.onUpdate },
    order: BEFORE_INSTALL,
  };
}

/** What the application wrote for one association (recorded when it was made, else inferred from what Sequelize kept). */
export const recordedActions = (a: AssociationLike): Written => given.get(a) ?? inferred(a);

/** The actions written on a through model's attributes, leaving out those Sequelize wrote there. */
function appActions(model: AnyModelStatic): Record<string, Actions> {
  const wrote = sequelizeWrote.get(model);
  const out: Record<string, Actions> = {};
  for (const [name, def] of Object.entries(raw(model))) {
    const mine = wrote?.get(name);
    const onDelete = def?.onDelete !== undefined && def.onDelete !== mine?.onDelete ? def.onDelete : undefined;
    const onUpdate = def?.onUpdate !== undefined && def.onUpdate !== mine?.onUpdate ? def.onUpdate : undefined;
    if (onDelete || onUpdate) out[name] = { onDelete, onUpdate };
  }
  return out;
}

type ThroughOption = string | AnyModelStatic | { model?: string | AnyModelStatic } | undefined;
const throughModelOf = (through: ThroughOption): AnyModelStatic | undefined => {
  const m = through && typeof through === 'object' && 'model' in through ? through.model : through;
  return typeof m === 'function' ? m : undefined;
};

/**
 * Records what the application passed to belongsTo / hasOne / hasMany / belongsToMany — read before
 * Sequelize runs, since it writes its own defaults into the same options object and into the
 * attributes it injects, where they would look like the application's.
 */
export function patchAssociationFactories(Model: Record<string, unknown>, isInstalled: (s: Sequelize) => boolean): void {
  if (patchedFactories.has(Model)) return;
  patchedFactories.add(Model);
  for (const name of ['belongsTo', 'hasOne', 'hasMany', 'belongsToMany']) {
    wrapStatic(Model, name, (factory) => {
      const original = factory as unknown as (this: unknown, target: unknown, options?: Actions & { through?: ThroughOption }) => object;
      return function recordActions(this: unknown, target: unknown, options?: Actions & { through?: ThroughOption }) {
        const isObject = !!options && typeof options === 'object';
        const written: Actions = (isObject && firstSight.get(options as object)) || {
          onDelete: options?.onDelete,
          onUpdate: options?.onUpdate,
        };
        if (isObject && !firstSight.has(options as object)) firstSight.set(options as object, written);
        // the model that holds the foreign key: its attributes may carry actions the application wrote
        const holder =
          name === 'belongsToMany'
            ? throughModelOf(options?.through)
            : name === 'belongsTo'
              ? (this as AnyModelStatic)
              : (target as AnyModelStatic);
        const onAttributes = holder && typeof holder === 'function' ? appActions(holder) : {};
        const declared = new Map(
          holder && typeof holder === 'function' ? Object.entries(raw(holder)).map(([k, v]) => [k, v?.allowNull]) : [],
        );
        const association = original.call(this, target, options) as AssociationLike & { foreignKeyAttribute?: { allowNull?: boolean } };
        let defaults: Actions;
        if (name === 'hasMany') {
          // hasMany computes its defaults into a copy: SET NULL when the key column allows null (as it was before), else CASCADE
          const allowNull = declared.has(association.foreignKey)
            ? declared.get(association.foreignKey)
            : (association.foreignKeyAttribute?.allowNull ?? true);
          defaults = { onDelete: allowNull ? 'SET NULL' : 'CASCADE', onUpdate: 'CASCADE' };
        } else if (name === 'belongsToMany') defaults = { onDelete: 'CASCADE', onUpdate: 'CASCADE' };
        // belongsTo and hasOne write their defaults into the options: read them before anything else can
        else defaults = { onDelete: association.options.onDelete, onUpdate: association.options.onUpdate };
        // (only for a Sequelize instance with the plugin: the factories are shared by every instance)
        const sequelize = (association.source as unknown as { sequelize?: Sequelize }).sequelize;
        if (name === 'belongsToMany' && !holder && sequelize && isInstalled(sequelize)) giveTenantColumn(association);
        const child = association.through?.model ?? (name === 'belongsTo' ? association.source : association.target);
        if (child) {
          // what is in the key attributes now and was not the application's, Sequelize wrote
          const wrote = sequelizeWrote.get(child) ?? new Map<string, Actions>();
          for (const key of [association.foreignKey, association.otherKey]) {
            const def = key ? raw(child)[key] : undefined;
            if (!key || !def) continue;
            const app = onAttributes[key];
            wrote.set(key, {
              onDelete: app?.onDelete ? wrote.get(key)?.onDelete : def.onDelete,
              onUpdate: app?.onUpdate ? wrote.get(key)?.onUpdate : def.onUpdate,
            });
          }
          sequelizeWrote.set(child, wrote);
        }
        given.set(association, { ...written, attributes: onAttributes, defaults, order: associationCount++ });
        return association;
      } as unknown as StaticMethod;
    });
  }
}

/** The referential actions PostgreSQL knows. */
const ACTIONS = new Set(['NO ACTION', 'RESTRICT', 'CASCADE', 'SET NULL', 'SET DEFAULT']);
/** `'set  null '` → `'SET NULL'`: PostgreSQL reads the words, not the spacing. */
export const normalizeAction = (value: string): string => String(value).trim().replace(/\s+/g, ' ').toUpperCase();

/** What Citus refuses on a foreign key that includes the distribution (tenant) column. */
const REFUSED = {
  onDelete: new Set(['SET NULL', 'SET DEFAULT']),
  onUpdate: new Set(['SET NULL', 'SET DEFAULT', 'CASCADE']),
};

/**
 * The ON DELETE / ON UPDATE of a foreign key that includes the tenant column. Citus refuses ON DELETE
 * SET NULL / SET DEFAULT (they would clear the tenant column too) and ON UPDATE SET NULL / SET DEFAULT /
 * CASCADE. Written by the application they are refused; as Sequelize's defaults they become NO ACTION.
 */
export function action(
  written: string | undefined,
  fallback: string | undefined,
  kind: 'onDelete' | 'onUpdate',
  source: string,
  model: string,
): string {
  const value = normalizeAction(written ?? fallback ?? 'NO ACTION');
  if (!ACTIONS.has(value)) {
    throw new MultitenantError(
      `${kind} '${written ?? fallback}' on ${source} is not a foreign key action (${[...ACTIONS].join(', ')}); nothing was created`,
      {
        model,
        operation: 'sync',
      },
    );
  }
  if (!REFUSED[kind].has(value)) return value;
  if (written) {
    throw new MultitenantError(
      `${kind} '${written}' on ${source}: the foreign key includes the tenant column and Citus rejects ${kind === 'onDelete' ? 'ON DELETE' : 'ON UPDATE'} ${value} there. Use ${kind === 'onDelete' ? 'CASCADE, RESTRICT or NO ACTION' : 'RESTRICT or NO ACTION'}; nothing was created`,
      { model, operation: 'sync' },
    );
  }
  return 'NO ACTION';
}
