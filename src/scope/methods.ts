import type { Sequelize } from 'sequelize';
import type { AnyModelStatic } from '../models';
import { stateOf } from '../state';
import { type StaticMethod, wrapStatic } from '../statics';
import { assertCreateTree } from './prevalidate';
import { activeScope, guarded, IN_FIND_OR_CREATE, stampRow, tenantToWrite } from './scope';

type Row = Record<string, unknown>;
type Opts = (Row & { fields?: string[] }) | undefined;
interface ModelClass {
  prototype: { save(options?: Opts): Promise<unknown> };
  bulkCreate(records: readonly Row[], options?: Opts): Promise<unknown>;
  upsert(values: Row, options?: Opts): Promise<unknown>;
  findOrCreate(options: Opts): Promise<unknown>;
}
interface InstanceLike {
  constructor: AnyModelStatic & { sequelize?: Sequelize };
  isNewRecord: boolean;
  dataValues: Row;
  _options?: { include?: unknown };
  setDataValue(key: string, value: unknown): void;
}

const patched = new WeakSet<object>();

function withField(options: Opts, attribute: string): Opts {
  if (!options?.fields || options.fields.includes(attribute)) return options;
  return { ...options, fields: [...options.fields, attribute] };
}

/**
 * Creates validate `allowNull` before any hook runs, and `fields:` drops values set later: the tenant is
 * filled in before Sequelize's own create/bulkCreate/upsert code starts. Installed once on Sequelize's
 * base Model class; a model of a Sequelize instance without multitenant() passes straight through.
 */
export function patchModelMethods(Model: ModelClass): void {
  if (patched.has(Model)) return;
  patched.add(Model);

  const save = Model.prototype.save;
  // Not async: one promise less on every save (a refusal still comes back as a rejected promise).
  Model.prototype.save = function scopedSave(this: InstanceLike, options?: Opts) {
    const model = this.constructor;
    const state = model.sequelize && stateOf(model.sequelize);
    if (!state || !this.isNewRecord) return save.call(this, options);
    return guarded(() => {
      // A create with includes sends the parent, then its children: all are checked before the first
      // INSERT — also when the parent itself needs no tenant (a store created in strict mode).
      if (this._options?.include) assertCreateTree(state, this as unknown as Parameters<typeof assertCreateTree>[1], 'create');
      const scope = activeScope(state, model, 'create', 'insert');
      if (!scope) return save.call(this, options);
      const { attribute } = scope.meta;
      const value = this.dataValues[attribute];
      const written = tenantToWrite(scope, value);
      if (written !== value) this.setDataValue(attribute, written);
      return save.call(this, withField(options, attribute));
    });
  };

  wrapStatic(Model, 'bulkCreate', (original) => {
    const bulkCreate = original as unknown as ModelClass['bulkCreate'];
    return async function scopedBulkCreate(this: AnyModelStatic & ModelClass, records: readonly Row[], options?: Opts) {
      const state = this.sequelize && stateOf(this.sequelize);
      const upserts = Array.isArray(options?.updateOnDuplicate) && options.updateOnDuplicate.length > 0;
      const access = upserts ? 'upsert' : 'insert';
      const scope = state && Array.isArray(records) && records.length > 0 ? activeScope(state, this, 'bulkCreate', access) : undefined;
      const stamped = scope ? records.map((r) => stampRow(scope, r, 'attribute')) : records;
      if (state && options?.include && Array.isArray(records)) {
        // Parents are inserted before their children: check every included row first.
        for (const record of stamped) {
          const built = (this as unknown as { build(v: Row, o: Row): unknown }).build(record, {
            isNewRecord: true,
            include: options.include,
          });
          assertCreateTree(state, built as Parameters<typeof assertCreateTree>[1], 'bulkCreate');
        }
      }
      if (!scope) return bulkCreate.call(this, records, options);
      return bulkCreate.call(this, stamped, withField(options, scope.meta.attribute));
    } as unknown as StaticMethod;
  });

  // findOrCreate's unique-violation branch reads every field of the violated key from `where`: the tenant
  // column the application never wrote there made it throw a TypeError. The INSERT below it drops the
  // tenant column from the error's fields (writes.ts), so the loser of a race gets [row, false].
  wrapStatic(Model, 'findOrCreate', (original) => {
    const findOrCreate = original as unknown as ModelClass['findOrCreate'];
    return function scopedFindOrCreate(this: AnyModelStatic & ModelClass, options: Opts) {
      const state = this.sequelize && stateOf(this.sequelize);
      if (!state || !options || typeof options !== 'object') return findOrCreate.call(this, options);
      return findOrCreate.call(this, { ...options, [IN_FIND_OR_CREATE]: true });
    } as unknown as StaticMethod;
  });

  wrapStatic(Model, 'upsert', (original) => {
    const upsert = original as unknown as ModelClass['upsert'];
    return async function scopedUpsert(this: AnyModelStatic & ModelClass, values: Row, options?: Opts) {
      const state = this.sequelize && stateOf(this.sequelize);
      const scope = state && values ? activeScope(state, this, 'upsert', 'upsert') : undefined;
      if (!scope) return upsert.call(this, values, options);
      return upsert.call(this, stampRow(scope, values, 'attribute'), options);
    } as unknown as StaticMethod;
  });
}
