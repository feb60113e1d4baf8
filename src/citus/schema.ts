import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, type TenantMeta, tenantMeta } from '../models';
import { notify } from '../notice';
import { bare, constraintName, hasCitus, ident, qualified, regclass, rows, run, type SqlOptions, type TableName } from './sql';

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
  /** Why this key cannot be created (an ON DELETE SET NULL written by the application): thrown when its table is. */
  refused?: MultitenantError;
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
const models = (sequelize: Sequelize) => (sequelize as unknown as { modelManager: { models: AnyModelStatic[] } }).modelManager.models;
const associationsOf = (model: AnyModelStatic) =>
  Object.values((model as unknown as { associations: Record<string, AssociationLike> }).associations ?? {});

/** onDelete / onUpdate as the application wrote them, recorded when the association is made. */
const given = new WeakMap<object, { onDelete?: string; onUpdate?: string }>();
const patchedFactories = new WeakSet<object>();

/** Records what the application passed to belongsTo / hasOne / hasMany / belongsToMany (Sequelize overwrites it with defaults). */
export function patchAssociationFactories(Model: Record<string, unknown>): void {
  if (patchedFactories.has(Model)) return;
  patchedFactories.add(Model);
  for (const name of ['belongsTo', 'hasOne', 'hasMany', 'belongsToMany']) {
    const original = Model[name] as (this: unknown, target: unknown, options?: { onDelete?: string; onUpdate?: string }) => object;
    Model[name] = function recordActions(this: unknown, target: unknown, options?: { onDelete?: string; onUpdate?: string }) {
      const association = original.call(this, target, options);
      given.set(association, { onDelete: options?.onDelete, onUpdate: options?.onUpdate });
      return association;
    };
  }
}

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
function action(association: object | undefined, kind: 'onDelete' | 'onUpdate', fallback: string | undefined, source: string): string {
  const written = association ? given.get(association)?.[kind] : undefined;
  const value = (written ?? fallback ?? 'NO ACTION').toUpperCase();
  if (!REFUSED[kind].has(value)) return value;
  if (written) {
    throw new MultitenantError(
      `${kind} '${written}' on ${source}: the foreign key includes the tenant column and Citus rejects ${kind === 'onDelete' ? 'ON DELETE' : 'ON UPDATE'} ${value} there. Use ${kind === 'onDelete' ? 'CASCADE, RESTRICT or NO ACTION' : 'RESTRICT or NO ACTION'}`,
      { operation: 'sync' },
    );
  }
  return 'NO ACTION';
}

function spec(
  child: AnyModelStatic,
  childMeta: TenantMeta,
  fk: string,
  parent: AnyModelStatic,
  parentMeta: TenantMeta,
  key: string,
  actions: { association: object; onDelete?: string; onUpdate?: string; via: string },
): ForeignKeySpec {
  const childTable = child.getTableName() as TableName;
  const source = `${child.name} → ${parent.name} (${actions.via})`;
  let onDelete = 'NO ACTION';
  let onUpdate = 'NO ACTION';
  let refused: MultitenantError | undefined;
  try {
    onDelete = action(actions.association, 'onDelete', actions.onDelete, source);
    onUpdate = action(actions.association, 'onUpdate', actions.onUpdate, source);
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
    if (s && !out.has(s.name)) out.set(s.name, s);
  };
  const pair = (
    child: AnyModelStatic,
    fk: string,
    parent: AnyModelStatic,
    key: string,
    a: AssociationLike,
    onDelete?: string,
    onUpdate?: string,
  ) => {
    const childMeta = tenantMeta(child);
    const parentMeta = tenantMeta(parent);
    if (!childMeta || !parentMeta || parentMeta.isTenantTable || fk === childMeta.column) return undefined;
    if (!concerns(bare(child.getTableName() as TableName)) && !concerns(bare(parent.getTableName() as TableName))) return undefined;
    return spec(child, childMeta, fk, parent, parentMeta, key, { association: a, onDelete, onUpdate, via: `${a.associationType} ${a.as}` });
  };
  for (const model of models(sequelize)) {
    for (const a of associationsOf(model)) {
      if (a.source !== model || a.options.constraints === false) continue;
      switch (a.associationType) {
        case 'BelongsTo':
          add(pair(a.source, a.identifierField, a.target, fieldOf(a.target, a.targetKey), a, a.options.onDelete, a.options.onUpdate));
          break;
        case 'HasOne':
          add(pair(a.target, a.identifierField, a.source, fieldOf(a.source, a.sourceKey), a, a.options.onDelete, a.options.onUpdate));
          break;
        case 'HasMany': {
          const nullable = raw(a.target)[a.foreignKey]?.allowNull !== false;
          add(
            pair(
              a.target,
              a.identifierField,
              a.source,
              fieldOf(a.source, a.sourceKey),
              a,
              a.options.onDelete ?? (nullable ? 'SET NULL' : 'CASCADE'),
              a.options.onUpdate ?? 'CASCADE',
            ),
          );
          break;
        }
        case 'BelongsToMany': {
          const through = a.through?.model;
          if (!through) break;
          const t = raw(through);
          add(
            pair(
              through,
              a.identifierField,
              a.source,
              a.sourceKeyField ?? fieldOf(a.source, a.sourceKey),
              a,
              t[a.foreignKey]?.onDelete ?? a.options.onDelete ?? 'CASCADE',
              t[a.foreignKey]?.onUpdate ?? a.options.onUpdate ?? 'CASCADE',
            ),
          );
          if (a.foreignIdentifierField && a.otherKey) {
            add(
              pair(
                through,
                a.foreignIdentifierField,
                a.target,
                a.targetKeyField ?? fieldOf(a.target, a.targetKey),
                a,
                t[a.otherKey]?.onDelete ?? 'CASCADE',
                t[a.otherKey]?.onUpdate ?? 'CASCADE',
              ),
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
export function foreignKeySql(s: ForeignKeySpec): string {
  const cols = (c: string[]) => c.map(ident).join(', ');
  return `ALTER TABLE ${qualified(s.child)} ADD CONSTRAINT ${ident(s.name)} FOREIGN KEY (${cols(s.columns)}) REFERENCES ${qualified(s.parent)} (${cols(s.parentColumns)}) ON DELETE ${s.onDelete} ON UPDATE ${s.onUpdate}`;
}

async function exists(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean> {
  const [r] = await rows<{ t: string | null }>(sequelize, `SELECT to_regclass(${regclass(table)})::text AS t`, options);
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
    `SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(${regclass(table)}) AND i.indisunique AND i.indpred IS NULL
       AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
         = ARRAY[${sorted.map((c) => `'${c.replace(/'/g, "''")}'`).join(', ')}]::text[]`,
    options,
  );
  if (found.length > 0) return false;
  await run(
    sequelize,
    `ALTER TABLE ${qualified(table)} ADD CONSTRAINT ${ident(constraintName(bare(table), ...columns, 'key'))} UNIQUE (${columns.map(ident).join(', ')})`,
    options,
  );
  return true;
}

/** Adds a foreign key unless a constraint of that name exists; for composite tenant keys, the parent's unique key first. */
export async function addForeignKey(sequelize: Sequelize, s: ForeignKeySpec, options: SqlOptions = {}): Promise<boolean> {
  const present = await rows(
    sequelize,
    `SELECT 1 FROM pg_constraint WHERE conname = '${s.name.replace(/'/g, "''")}' AND conrelid = to_regclass(${regclass(s.child)})`,
    options,
  );
  if (present.length > 0) return false;
  if (s.composite) await ensureUniqueKey(sequelize, s.parent, s.parentColumns, options);
  await run(sequelize, foreignKeySql(s), options);
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
  const own = bare(model.getTableName() as TableName);
  const mine = tenantForeignKeys(sequelize, (table) => table === own).filter((s) => bare(s.child) === own);
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
        onDelete: (meta && column === meta.column ? action(undefined, 'onDelete', onDelete, model.name) : onDelete) ?? 'NO ACTION',
        onUpdate: (meta && column === meta.column ? action(undefined, 'onUpdate', onUpdate, model.name) : onUpdate) ?? 'NO ACTION',
        composite: false,
        source: `${model.name}.${name}`,
      };
      deferredOf(sequelize).set(s.name, s);
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

async function isDistributed(sequelize: Sequelize, table: TableName, options: SqlOptions): Promise<boolean> {
  return (
    (await rows(sequelize, `SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(${regclass(table)})`, options)).length > 0
  );
}

/** The tenant table a tenant model is colocated with: the one its tenant column points to, else the only one. */
function colocationTable(sequelize: Sequelize, model: AnyModelStatic, meta: TenantMeta): TableName | undefined {
  if (meta.isTenantTable) return undefined;
  for (const a of associationsOf(model)) {
    if (a.associationType === 'BelongsTo' && a.identifierField === meta.column && tenantMeta(a.target)?.isTenantTable)
      return a.target.getTableName() as TableName;
  }
  const tenantTables = models(sequelize).filter((m) => tenantMeta(m)?.isTenantTable);
  return tenantTables.length === 1 ? (tenantTables[0]?.getTableName() as TableName) : undefined;
}

/** The SELECT that distributes a tenant model (or makes a reference table of a global one), per the Citus docs. */
export function distributionSql(table: TableName, column: string, colocateWith?: TableName): string {
  const colocate = colocateWith ? `, colocate_with => ${regclass(colocateWith)}` : '';
  return `SELECT create_distributed_table(${regclass(table)}, '${column.replace(/'/g, "''")}'${colocate})`;
}
export const referenceSql = (table: TableName): string => `SELECT create_reference_table(${regclass(table)})`;

/** After CREATE TABLE on Citus: distribute a tenant model, or make a `referenceTable: true` model a reference table. */
export async function distributeModel(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions = {}): Promise<string | undefined> {
  const table = model.getTableName() as TableName;
  if (await isDistributed(sequelize, table, options)) return undefined;
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
    sql = distributionSql(table, meta.column, ready ? colocate : undefined);
  } else if ((model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable) {
    sql = referenceSql(table);
  }
  if (sql) await run(sequelize, sql, options);
  return sql;
}

/** After a model's sync: the foreign keys from and to it whose two tables now exist. */
export async function addForeignKeysFor(sequelize: Sequelize, model: AnyModelStatic, options: SqlOptions = {}): Promise<ForeignKeySpec[]> {
  const table = bare(model.getTableName() as TableName);
  const specs = [...tenantForeignKeys(sequelize, (t) => t === table), ...deferredOf(sequelize).values()].filter(
    (s) => !s.refused && (bare(s.child) === table || bare(s.parent) === table),
  );
  const added: ForeignKeySpec[] = [];
  for (const s of specs) {
    if (!(await exists(sequelize, s.child, options)) || !(await exists(sequelize, s.parent, options))) continue;
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
export function patchCreateTable(qi: QueryInterfaceLike, isInstalled: () => boolean, checkModel: (m: AnyModelStatic) => void): void {
  const createTable = qi.createTable;
  const sequelize = qi.sequelize;
  qi.createTable = async function schemaAwareCreateTable(tableName, attributes, options, model) {
    if (!model || !isInstalled() || sequelize.getDialect() !== 'postgres')
      return createTable.call(this, tableName, attributes, options, model);
    checkModel(model);
    const citus = await hasCitus(sequelize, options as SqlOptions);
    const prepared = prepareCreateTable(sequelize, model, attributes, options ?? {}, citus);
    const result = await createTable.call(this, tableName, prepared.attributes, prepared.options, model);
    if (citus) await distributeModel(sequelize, model, options as SqlOptions);
    else if (
      !noticed.has(sequelize) &&
      (tenantMeta(model) || (model as unknown as { options: { referenceTable?: boolean } }).options.referenceTable)
    ) {
      noticed.add(sequelize);
      notify(sequelize, 'no citus extension in this database: tables are created, not distributed (plain PostgreSQL)');
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
    const result = await sync.call(this, options);
    const sequelize = (this as unknown as { sequelize?: Sequelize }).sequelize;
    if (sequelize && isInstalled(sequelize) && sequelize.getDialect() === 'postgres')
      await addForeignKeysFor(sequelize, this, (options ?? {}) as SqlOptions);
    return result;
  };
}
