import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import { notify } from '../notice';
import { policyReadyForCitus } from '../rls/policy';
import { bare, constraintName, hasCitus, ident, qualified, regclass, rows, run, type SqlOptions, type TableName, tableKey } from './sql';

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
  /** The creation order of the association it comes from (the first of two twins wins, as in plain Sequelize). */
  order?: number;
}

interface AssociationLike {
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
type Raw = Record<string, { field?: string; allowNull?: boolean; onDelete?: string; onUpdate?: string; references?: unknown }>;
const raw = (model: AnyModelStatic) => (model as unknown as { rawAttributes: Raw }).rawAttributes;
const fieldOf = (model: AnyModelStatic, attr: string | undefined) => (attr ? (raw(model)[attr]?.field ?? attr) : attr) as string;
export const models = (sequelize: Sequelize) =>
  (sequelize as unknown as { modelManager: { models: AnyModelStatic[] } }).modelManager.models;
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
      order: -1,
    };
  }
  if (a.associationType === 'BelongsToMany') return { onDelete: o.onDelete, onUpdate: o.onUpdate, order: -1 };
  const mayBeDefault = (value: string | undefined, defaults: string[]) => !value || defaults.includes(normalizeAction(value));
  return {
    onDelete: mayBeDefault(o.onDelete, ['SET NULL', 'NO ACTION', 'CASCADE']) ? undefined : o.onDelete,
    onUpdate: mayBeDefault(o.onUpdate, ['CASCADE']) ? undefined : o.onUpdate,
    defaults: { onDelete: o.onDelete, onUpdate: o.onUpdate },
    order: -1,
  };
}

/** Integer types compare as one family (an INTEGER and a BIGINT tenant column are one dimension on PostgreSQL). */
const typeFamily = (key: string) => (['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'MEDIUMINT'].includes(key) ? 'integer' : key);

/** tenantMeta, or undefined for a tenantKey that names nothing yet (reported where the model is used). */
const metaOf = (model: AnyModelStatic): TenantMeta | undefined => {
  try {
    return tenantMeta(model);
  } catch {
    return undefined;
  }
};
export const associationsOf = (model: AnyModelStatic) =>
  Object.values((model as unknown as { associations: Record<string, AssociationLike> }).associations ?? {});

type Actions = { onDelete?: string; onUpdate?: string };
/** What the application wrote for one association: on the association, and on the key attributes. */
interface Written extends Actions {
  /** Actions the application wrote on the attributes of the model holding the key (the through model for belongsToMany). */
  attributes?: Record<string, Actions>;
  /** Sequelize's own defaults for this association, computed as it computes them (from the attributes before it ran). */
  defaults?: Actions;
  /** Creation order: when two associations make one key, the first one's actions are the column's, as in plain Sequelize. */
  order?: number;
}
let associationCount = 0;
/** onDelete / onUpdate as the application wrote them, recorded when the association is made. */
const given = new WeakMap<object, Written>();
/** Option objects already passed to an association: Sequelize writes its defaults into them, so the first sight counts. */
const firstSight = new WeakMap<object, Actions>();
/** The actions Sequelize itself wrote into a through model's attributes (not the application's). */
const sequelizeWrote = new WeakMap<object, Map<string, Actions>>();
const patchedFactories = new WeakSet<object>();

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
 * `belongsToMany(Tag, { through: 'product_tags' })`: Sequelize generates the through model with the
 * source's options — `tenantKey` included — but not the tenant column. It gets it here, typed as the
 * source's, so that the through table is a tenant table like one declared as a model.
 */
function giveTenantColumn(association: AssociationLike): void {
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

/**
 * Records what the application passed to belongsTo / hasOne / hasMany / belongsToMany — read before
 * Sequelize runs, since it writes its own defaults into the same options object and into the
 * attributes it injects, where they would look like the application's.
 */
export function patchAssociationFactories(Model: Record<string, unknown>, isInstalled: (s: Sequelize) => boolean): void {
  if (patchedFactories.has(Model)) return;
  patchedFactories.add(Model);
  for (const name of ['belongsTo', 'hasOne', 'hasMany', 'belongsToMany']) {
    const original = Model[name] as (this: unknown, target: unknown, options?: Actions & { through?: ThroughOption }) => object;
    Model[name] = function recordActions(this: unknown, target: unknown, options?: Actions & { through?: ThroughOption }) {
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
    };
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
function action(
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

interface ActionSource {
  written: Actions;
  fallback: Actions;
  via: string;
  order?: number;
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
  try {
    onDelete = action(actions.written.onDelete, actions.fallback.onDelete, 'onDelete', source, child.name);
    onUpdate = action(actions.written.onUpdate, actions.fallback.onUpdate, 'onUpdate', source, child.name);
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
  };
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
      const recorded = given.get(a) ?? inferred(a);
      switch (a.associationType) {
        case 'BelongsTo':
        case 'HasOne':
        case 'HasMany': {
          const child = a.associationType === 'BelongsTo' ? a.source : a.target;
          const parent = a.associationType === 'BelongsTo' ? a.target : a.source;
          const key = a.associationType === 'BelongsTo' ? fieldOf(a.target, a.targetKey) : fieldOf(a.source, a.sourceKey);
          const onAttribute = recorded.attributes?.[a.foreignKey] ?? {};
          const written = { onDelete: recorded.onDelete ?? onAttribute.onDelete, onUpdate: recorded.onUpdate ?? onAttribute.onUpdate };
          add(pair(child, a.identifierField, parent, key, a, { written, fallback: recorded.defaults ?? {}, order: recorded.order }));
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

/** The ALTER TABLE that adds one foreign key. */
export function foreignKeySql(sequelize: Sequelize, s: ForeignKeySpec): string {
  const cols = (c: string[]) => c.map((name) => ident(sequelize, name)).join(', ');
  return `ALTER TABLE ${qualified(sequelize, s.child)} ADD CONSTRAINT ${ident(sequelize, s.name)} FOREIGN KEY (${cols(s.columns)}) REFERENCES ${qualified(sequelize, s.parent)} (${cols(s.parentColumns)}) ON DELETE ${s.onDelete} ON UPDATE ${s.onUpdate}`;
}

export async function exists(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean> {
  const [r] = await rows<{ t: string | null }>(sequelize, `SELECT to_regclass(${regclass(sequelize, table)})::text AS t`, options);
  return !!r?.t;
}

/** Makes sure `table` has a unique key (or primary key) on exactly `columns`; adds `UNIQUE (columns)` if not. */
export async function ensureUniqueKey(
  sequelize: Sequelize,
  table: TableName,
  columns: string[],
  options: SqlOptions = {},
): Promise<boolean> {
  const sorted = [...columns].sort();
  const found = await rows(
    sequelize,
    `SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(${regclass(sequelize, table)}) AND i.indisunique AND i.indpred IS NULL
       AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
         = ARRAY[${sorted.map((c) => `'${c.replace(/'/g, "''")}'`).join(', ')}]::text[]`,
    options,
  );
  if (found.length > 0) return false;
  await run(
    sequelize,
    `ALTER TABLE ${qualified(sequelize, table)} ADD CONSTRAINT ${ident(sequelize, constraintName(bare(table), ...columns, 'key'))} UNIQUE (${columns.map((c) => ident(sequelize, c)).join(', ')})`,
    options,
  );
  return true;
}

interface ForeignKeyRow {
  name: string;
  columns: string[];
  parent_columns: string[];
  same_parent: boolean;
}

/** The foreign keys of `table`, with their columns in key order (names as PostgreSQL stores them). */
async function foreignKeysOf(sequelize: Sequelize, table: TableName, parent: TableName, options: SqlOptions): Promise<ForeignKeyRow[]> {
  const columns = (key: string, rel: string) =>
    `(SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.${key}) WITH ORDINALITY AS k(n, i) JOIN pg_attribute a ON a.attrelid = c.${rel} AND a.attnum = k.n)`;
  return rows<ForeignKeyRow>(
    sequelize,
    `SELECT c.conname::text AS name, ${columns('conkey', 'conrelid')} AS columns, ${columns('confkey', 'confrelid')} AS parent_columns,
       c.confrelid = to_regclass(${regclass(sequelize, parent)}) AS same_parent
     FROM pg_constraint c WHERE c.conrelid = to_regclass(${regclass(sequelize, table)}) AND c.contype = 'f'`,
    options,
  );
}

const sameList = (a: unknown, b: string[]) => Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
const matches = (row: ForeignKeyRow, s: ForeignKeySpec) =>
  row.same_parent && sameList(row.columns, s.columns) && sameList(row.parent_columns, s.parentColumns);

/**
 * Adds a foreign key unless one with the same columns to the same parent columns exists; for composite
 * tenant keys, the parent's unique key first. A key decided on must exist afterwards: a constraint of
 * that name with another definition, or a key that is still missing after the ALTER TABLE, is a
 * MultitenantError (never a key silently skipped).
 */
export async function addForeignKey(sequelize: Sequelize, s: ForeignKeySpec, options: SqlOptions = {}): Promise<boolean> {
  const existing = await foreignKeysOf(sequelize, s.child, s.parent, options);
  if (existing.some((row) => matches(row, s))) return false;
  const refuse = (why: string) =>
    new MultitenantError(`the foreign key ${foreignKeySql(sequelize, s)} (${s.source}) ${why}`, {
      model: s.model,
      operation: s.operation ?? 'sync',
    });
  const [clash] = await rows<{ def: string }>(
    sequelize,
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = '${s.name.replace(/'/g, "''")}' AND conrelid = to_regclass(${regclass(sequelize, s.child)})`,
    options,
  );
  if (clash)
    throw refuse(`cannot be created: a constraint named ${ident(sequelize, s.name)} already holds ${clash.def}. Rename one of them`);
  if (s.composite) await ensureUniqueKey(sequelize, s.parent, s.parentColumns, options);
  await runCitus(sequelize, foreignKeySql(sequelize, s), s.model, options, s.operation ?? 'sync');
  const after = await foreignKeysOf(sequelize, s.child, s.parent, options);
  if (!after.some((row) => matches(row, s))) throw refuse('was sent but is not in the catalog afterwards');
  return true;
}

/** On Citus, single-column foreign keys of distributed / reference tables wait until both ends are distributed. */
const deferred = new WeakMap<Sequelize, Map<string, ForeignKeySpec>>();
function deferredOf(sequelize: Sequelize): Map<string, ForeignKeySpec> {
  const map = deferred.get(sequelize) ?? new Map<string, ForeignKeySpec>();
  deferred.set(sequelize, map);
  return map;
}

type Attributes = Record<string, Raw[string] & { references?: { model: TableName | { getTableName(): TableName }; key?: string } }>;

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
  const distributed = citus && (!!meta || !!(model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable);
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

/** How Citus holds a table: hash-distributed on a column, a reference table, a Citus local table, or not at all. */
export interface Distribution {
  kind: 'hash' | 'reference' | 'local' | 'other';
  column: string | null;
  colocation: number;
}

export async function distributionOf(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<Distribution | undefined> {
  const [row] = await rows<{ method: string; repmodel: string; col: string | null; g: number }>(
    sequelize,
    `SELECT partmethod AS method, repmodel, column_to_column_name(logicalrelid, partkey) AS col, colocationid AS g
       FROM pg_dist_partition WHERE logicalrelid = to_regclass(${regclass(sequelize, table)})`,
    options,
  );
  if (!row) return undefined;
  // a Citus local table (a local table Citus took into its metadata, e.g. for a key to a reference table) is not distributed
  const kind = row.method === 'h' ? 'hash' : row.method === 'n' ? (row.repmodel === 't' ? 'reference' : 'local') : 'other';
  return { kind, column: row.col, colocation: Number(row.g) };
}

/** True when the table is hash-distributed or a reference table (what a foreign key between distributed tables needs). */
export async function isDistributed(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean> {
  const d = await distributionOf(sequelize, table, options);
  return d?.kind === 'hash' || d?.kind === 'reference';
}

/**
 * What is wrong with how Citus holds a model's table, or undefined when it is as the library makes it:
 * a tenant model hash-distributed on its tenant column (colocated with its tenant table when that one is
 * distributed), a `referenceTable` model a reference table. With the statement that fixes it.
 */
export async function distributionProblem(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions): Promise<string | undefined> {
  const table = model.getTableName() as TableName;
  const d = await distributionOf(sequelize, table, options);
  const meta = metaOf(model);
  const name = bare(table);
  if (meta) {
    if (!d || d.kind === 'local') return `${name} is a local table on Citus: it was not distributed`;
    if (d.kind !== 'hash' || d.column !== meta.column) {
      return `${name} is ${d.kind === 'reference' ? 'a reference table' : `distributed on ${d.column ?? 'nothing'}`}, not hash-distributed on its tenant column ${meta.column}: run SELECT undistribute_table(${regclass(sequelize, table)}) and sync again${d.kind === 'hash' ? `, or SELECT alter_distributed_table(${regclass(sequelize, table)}, distribution_column => '${meta.column}')` : ''}`;
    }
    const colocate = colocationTable(sequelize, model, meta);
    const parent = colocate ? await distributionOf(sequelize, colocate, options) : undefined;
    if (colocate && parent?.kind === 'hash' && parent.colocation !== d.colocation) {
      return `${name} is not colocated with ${bare(colocate)}: run SELECT alter_distributed_table(${regclass(sequelize, table)}, colocate_with => ${regclass(sequelize, colocate)})`;
    }
    return undefined;
  }
  if ((model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable && d?.kind !== 'reference') {
    return `${name} (referenceTable: true) is ${d ? (d.kind === 'local' ? 'a Citus local table' : `distributed on ${d.column}`) : 'a local table'}, not a reference table${d?.kind === 'hash' ? `: run SELECT undistribute_table(${regclass(sequelize, table)}) and sync again` : ''}`;
  }
  return undefined;
}

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

/**
 * The table a tenant model is colocated with: its tenant table when the distribution columns have the
 * same type (Citus colocates nothing else; a tenant column of another type — a text `org` beside bigint
 * stores — is another tenant dimension and gets a colocation group of its own).
 */
export function colocationTable(sequelize: Sequelize, model: AnyModelStatic, meta: TenantMeta): TableName | undefined {
  const found = tenantTableOf(sequelize, model, meta);
  if (!found || tenantMeta(found.model)?.typeKey !== meta.typeKey) return undefined;
  return found.model.getTableName() as TableName;
}

/** Runs a Citus statement for `model`; a refusal becomes a MultitenantError naming the model, the statement and Citus' reason. */
export async function runCitus(
  sequelize: Sequelize,
  sql: string,
  model: string | undefined,
  options: SqlOptions,
  operation = 'sync',
): Promise<void> {
  try {
    await run(sequelize, sql, options);
  } catch (err) {
    const original = (err as { original?: { message?: string; detail?: string; hint?: string } }).original;
    const said = [original?.message ?? (err as Error).message, original?.detail, original?.hint].filter(Boolean).join('. ');
    throw new MultitenantError(`Citus refused ${sql}: ${said}`, { model, operation });
  }
}

/** The SELECT that distributes a tenant model (or makes a reference table of a global one), per the Citus docs. */
export function distributionSql(sequelize: Sequelize, table: TableName, column: string, colocateWith?: TableName): string {
  const colocate = colocateWith ? `, colocate_with => ${regclass(sequelize, colocateWith)}` : '';
  return `SELECT create_distributed_table(${regclass(sequelize, table)}, '${column.replace(/'/g, "''")}'${colocate})`;
}
export const referenceSql = (sequelize: Sequelize, table: TableName): string =>
  `SELECT create_reference_table(${regclass(sequelize, table)})`;

/** After CREATE TABLE on Citus: distribute a tenant model, or make a `referenceTable: true` model a reference table. */
export async function distributeModel(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions = {}): Promise<string | undefined> {
  const table = model.getTableName() as TableName;
  const current = await distributionOf(sequelize, table, options);
  if (current && current.kind !== 'local') {
    // already distributed: as the library makes it, or a MultitenantError with the statement that fixes it
    const problem = await distributionProblem(sequelize, model, options);
    if (problem) throw new MultitenantError(problem, { model: model.name, operation: 'sync' });
    return undefined;
  }
  const meta = tenantMeta(model);
  let sql: string | undefined;
  if (meta) {
    const pk = (model as unknown as { primaryKeyAttributes: string[] }).primaryKeyAttributes.map((a) => fieldOf(model, a));
    if (!meta.isTenantTable && !pk.includes(meta.column) && !hasThroughAutoKey(model)) {
      throw new MultitenantError(
        `cannot distribute ${bare(table)} on Citus: its primary key (${pk.join(', ')}) does not include the tenant column ${meta.column}. Make it (${[meta.column, ...pk].join(', ')})`,
        { model: model.name, operation: 'sync' },
      );
    }
    const colocate = colocationTable(sequelize, model, meta);
    const ready = colocate && (await isDistributed(sequelize, colocate, options));
    sql = distributionSql(sequelize, table, meta.column, ready ? colocate : undefined);
    await policyReadyForCitus(sequelize, table, meta.column, options);
  } else if ((model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable) {
    sql = referenceSql(sequelize, table);
  }
  if (sql) await runCitus(sequelize, sql, model.name, options);
  return sql;
}

/** True when `table` has every one of `columns`. */
export async function hasColumns(sequelize: Sequelize, table: TableName, columns: string[], options: SqlOptions): Promise<boolean> {
  const found = await rows<{ n: number }>(
    sequelize,
    `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass(${regclass(sequelize, table)}) AND attnum > 0 AND NOT attisdropped
       AND attname::text = ANY(ARRAY[${columns.map((c) => `'${c.replace(/'/g, "''")}'`).join(', ')}]::text[])`,
    options,
  );
  return (found[0]?.n ?? 0) === new Set(columns).size;
}

/** After a model's sync: the foreign keys from and to it whose two tables now exist. */
export async function addForeignKeysFor(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions = {}): Promise<ForeignKeySpec[]> {
  const table = tableKey(model.getTableName() as TableName);
  const specs = [...tenantForeignKeys(sequelize, (t) => t === table), ...deferredOf(sequelize).values()].filter(
    (s) => !s.refused && (tableKey(s.child) === table || tableKey(s.parent) === table),
  );
  const added: ForeignKeySpec[] = [];
  const citus = await hasCitus(sequelize, options);
  for (const s of specs) {
    if (!(await exists(sequelize, s.child, options)) || !(await exists(sequelize, s.parent, options))) continue;
    // on Citus a key waits until both of its tables are distributed (the later one's sync adds it)
    if (citus && (!(await isDistributed(sequelize, s.child, options)) || !(await isDistributed(sequelize, s.parent, options)))) continue;
    // a table that exists without a key column yet (alter adds it in that model's own sync): wait for it
    if (!(await hasColumns(sequelize, s.child, s.columns, options)) || !(await hasColumns(sequelize, s.parent, s.parentColumns, options)))
      continue;
    if (await addForeignKey(sequelize, s, options)) added.push(s);
  }
  return added;
}

const patchedSync = new WeakSet<object>();
const noticed = new WeakSet<Sequelize>();

interface QueryInterfaceLike {
  sequelize: Sequelize;
  createTable(tableName: TableName, attributes: Attributes, options: Record<string, unknown>, model?: AnyModelStatic): Promise<unknown>;
}

/** The schema layer on one Sequelize instance: CREATE TABLE preparation and distribution. */
export function patchCreateTable(
  qi: QueryInterfaceLike,
  isInstalled: () => boolean,
  checkModel: (m: AnyModelStatic) => void,
  assertCitus: (m: AnyModelStatic) => void,
): void {
  const createTable = qi.createTable;
  const sequelize = qi.sequelize;
  qi.createTable = async function schemaAwareCreateTable(tableName, attributes, options, model) {
    if (!model || !isInstalled() || sequelize.getDialect() !== 'postgres')
      return createTable.call(this, tableName, attributes, options, model);
    checkModel(model);
    const citus = await hasCitus(sequelize, options as SqlOptions);
    // a Model.sync() alone: what Citus would refuse is refused before CREATE TABLE, not after it
    if (citus) assertCitus(model);
    const prepared = prepareCreateTable(sequelize, model, attributes, options ?? {}, citus);
    const result = await createTable.call(this, tableName, prepared.attributes, prepared.options, model);
    if (citus) await distributeModel(sequelize, model, options as SqlOptions);
    else if (
      !noticed.has(sequelize) &&
      (tenantMeta(model) || (model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable)
    ) {
      noticed.add(sequelize);
      notify(sequelize, 'no citus extension in this database: tables are created, not distributed (plain PostgreSQL)', undefined, 'info');
    }
    return result;
  };
}

/** After each Model.sync: add the foreign keys that are now possible. Installed once on the base Model. */
export function patchModelSync(
  Model: { sync(this: AnyModelStatic, options?: Record<string, unknown>): Promise<unknown> },
  isInstalled: (s: Sequelize) => boolean,
): void {
  if (patchedSync.has(Model)) return;
  patchedSync.add(Model);
  const sync = Model.sync;
  Model.sync = async function schemaAwareSync(this: AnyModelStatic, options?: Record<string, unknown>) {
    // Sequelize hands these options on to the statements of `alter` (changeColumn, removeConstraint)
    const result = await sync.call(this, { ...options, [IN_SYNC]: this });
    const sequelize = (this as unknown as { sequelize?: Sequelize }).sequelize;
    if (sequelize && isInstalled(sequelize) && sequelize.getDialect() === 'postgres') {
      const sqlOptions = (options ?? {}) as SqlOptions;
      // Sequelize creates a table only when it is missing: one that existed before (created by plain
      // Sequelize, by an earlier sync that failed part-way) is distributed here, so sync converges.
      if (await hasCitus(sequelize, sqlOptions)) await distributeModel(sequelize, this, sqlOptions);
      await addForeignKeysFor(sequelize, this, sqlOptions);
    }
    return result;
  };
}

/** Marks the options of the statements a model's sync sends, with the model. */
const IN_SYNC = Symbol('sequelize-multitenant:sync');

interface AlterQueryInterface extends QueryInterfaceLike {
  changeColumn(table: TableName, column: string, attribute: unknown, options?: Record<string | symbol, unknown>): Promise<unknown>;
  removeConstraint(table: TableName, name: string, options?: Record<string | symbol, unknown>): Promise<unknown>;
}

/**
 * `sync({ alter: true })` re-creates what a column's `references` says on every run: Sequelize drops
 * every foreign key on the column to the referenced table (the tenant key too) and adds its own
 * single-column one. Inside a model's sync, the tenant foreign keys are kept and the single-column
 * `REFERENCES` they replace is left out, as at CREATE TABLE.
 */
export function patchAlter(qi: AlterQueryInterface, isInstalled: () => boolean): void {
  const sequelize = qi.sequelize;
  const changeColumn = qi.changeColumn;
  const removeConstraint = qi.removeConstraint;
  const syncing = (options: Record<string | symbol, unknown> | undefined) =>
    isInstalled() && sequelize.getDialect() === 'postgres' ? (options?.[IN_SYNC] as AnyModelStatic | undefined) : undefined;
  qi.changeColumn = async function keepTenantKeys(table, column, attribute, options) {
    const model = syncing(options);
    if (!model || !attribute || typeof attribute !== 'object' || !('references' in attribute))
      return changeColumn.call(this, table, column, attribute, options);
    const citus = await hasCitus(sequelize, options as SqlOptions);
    const prepared = prepareCreateTable(sequelize, model, { [column]: attribute as Attributes[string] }, {}, citus);
    return changeColumn.call(this, table, column, prepared.attributes[column], options);
  };
  qi.removeConstraint = async function keepTenantKeys(table, name, options) {
    const model = syncing(options);
    if (model) {
      const own = tableKey(table);
      if (tenantForeignKeys(sequelize, (t) => t === own).some((s) => tableKey(s.child) === own && s.name === name)) return undefined;
    }
    return removeConstraint.call(this, table, name, options);
  };
}
