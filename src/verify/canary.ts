import { DataTypes, type Sequelize } from 'sequelize';
import { withTenant } from '../context';
import { MultitenantError } from '../errors';
import { type AnyModelStatic, CANARY_PREFIX } from '../models';
import type { CanaryReport } from '../state';
import { CANARY_TENANT, type Captured, inspect, TENANT } from './canary-sql';

// The canary: at install, the SQL of representative operations is built — never sent — on throwaway
// tenant models under a throwaway tenant, and every reference to a tenant table in it is checked to
// carry the tenant predicate where it must (a JOIN's ON, the WHERE of its own query level (not a subquery's), an INSERT's
// values). The wrappers being present (internals.ts) does not prove that Sequelize still calls them;
// this does. It runs once per multitenant() call, never per query.
//
// How SQL is built without being sent: with `hooks: false` and `validate: false`, the Model methods
// below reach the query interface synchronously, and the query interface builds its SQL synchronously
// before handing it to `sequelize.query`. For the duration of that synchronous run (no other code can
// run in between), `sequelize.query` is replaced by a recorder whose promise never settles, so nothing
// after it runs; the app's define hooks are not run for the throwaway models, which are removed again.

/** `hooks: false` is a Sequelize option its find/count types leave out. */
const NO_HOOKS: object = { hooks: false };

interface Operation {
  /** What is exercised, for the error: the Model method and the Sequelize internal it goes through. */
  readonly path: string;
  /** Tables (model names) the statement must reference: an operation that lost one proves nothing. */
  readonly models: readonly string[];
  readonly run: (m: CanaryModels) => unknown;
  /** Reads and the filters of updates and deletes: checked unless the plugin is in writeOnly mode. */
  readonly filters: boolean;
}

type CanaryModels = Record<'Parent' | 'Child' | 'Grandchild' | 'Tag' | 'Tagging', AnyModelStatic>;

const OPERATIONS: readonly Operation[] = [
  {
    path: 'findAll with nested includes under a limit (QueryInterface#select, QueryGenerator#generateJoin, #_generateSubQueryFilter)',
    models: ['Parent', 'Child', 'Grandchild'],
    filters: true,
    run: (m) =>
      m.Parent.findAll({
        ...NO_HOOKS,
        limit: 2,
        include: [
          { model: m.Parent, as: 'owner', required: true },
          { model: m.Child, as: 'children', required: true, include: [{ model: m.Grandchild, as: 'grandchildren' }] },
        ],
      }),
  },
  {
    path: 'findAll with a belongsToMany include (QueryGenerator#generateThroughJoin)',
    models: ['Parent', 'Tag', 'Tagging'],
    filters: true,
    run: (m) => m.Parent.findAll({ ...NO_HOOKS, include: [{ model: m.Tag, as: 'tags' }] }),
  },
  {
    path: 'count with an include (QueryInterface#rawSelect)',
    models: ['Parent', 'Child'],
    filters: true,
    run: (m) => m.Parent.count({ ...NO_HOOKS, include: [{ model: m.Child, as: 'children', required: true }] }),
  },
  {
    path: 'Model.update (QueryInterface#bulkUpdate)',
    models: ['Parent'],
    filters: true,
    run: (m) => m.Parent.update({ name: 'canary' }, { where: { id: 1 }, hooks: false, validate: false }),
  },
  {
    path: 'instance save of a changed row (QueryInterface#update)',
    models: ['Parent'],
    filters: true,
    run: (m) => {
      const row = m.Parent.build({ id: 1, [TENANT]: CANARY_TENANT, name: 'a' }, { isNewRecord: false });
      row.set('name', 'b');
      return row.save({ hooks: false, validate: false });
    },
  },
  {
    path: 'Model.increment (QueryInterface#increment)',
    models: ['Parent'],
    filters: true,
    run: (m) => m.Parent.increment({ score: 1 }, { where: { id: 1 } }),
  },
  {
    path: 'Model.destroy (QueryInterface#bulkDelete)',
    models: ['Parent'],
    filters: true,
    run: (m) => m.Parent.destroy({ where: { id: 1 }, hooks: false }),
  },
  {
    path: 'Model.destroy with a limit (QueryGenerator#deleteQuery)',
    models: ['Parent'],
    filters: true,
    run: (m) => m.Parent.destroy({ where: { id: 1 }, limit: 1, hooks: false }),
  },
  {
    path: 'instance destroy (QueryInterface#delete)',
    models: ['Parent'],
    filters: true,
    run: (m) => m.Parent.build({ id: 1, [TENANT]: CANARY_TENANT }, { isNewRecord: false }).destroy({ hooks: false }),
  },
  {
    path: 'create (QueryInterface#insert, QueryGenerator#insertQuery)',
    models: ['Parent'],
    filters: false,
    run: (m) => m.Parent.build({ id: 1, name: 'a' }).save({ hooks: false, validate: false }),
  },
  {
    path: 'bulkCreate (QueryInterface#bulkInsert, QueryGenerator#bulkInsertQuery)',
    models: ['Parent'],
    filters: false,
    run: (m) => m.Parent.bulkCreate([{ id: 1, name: 'a' }], { hooks: false, validate: false }),
  },
];

interface Hookable {
  runHooks: (...args: unknown[]) => unknown;
  query: (...args: unknown[]) => unknown;
  modelManager: { removeModel(model: unknown): void };
  isDefined(name: string): boolean;
}

/** Throwaway models with one tenant column, named so that they cannot clash with the application's. */
function defineModels(sequelize: Sequelize): CanaryModels {
  const s = sequelize as unknown as Hookable;
  let suffix = 0;
  while (s.isDefined(`${CANARY_PREFIX}${suffix}Parent`)) suffix++;
  const prefix = `${CANARY_PREFIX}${suffix}`;
  // A fresh object per attribute: Sequelize writes into attribute definitions. The keys leave the tenant
  // column out, so that an instance's own key never supplies the predicate the scoping must add.
  const key = () => ({ type: DataTypes.INTEGER, primaryKey: true, autoIncrement: false });
  const define = (name: string, attributes: Record<string, unknown>): AnyModelStatic =>
    sequelize.define(`${prefix}${name}`, { [TENANT]: { type: DataTypes.INTEGER, allowNull: false }, ...attributes }, {
      tableName: `mt_canary_${name.toLowerCase()}`,
      tenantKey: TENANT,
      timestamps: false,
      paranoid: false,
      underscored: false,
      freezeTableName: true,
      version: false,
      hooks: {},
      scopes: {},
      defaultScope: {},
    } as never) as AnyModelStatic;
  const m: CanaryModels = {
    Parent: define('Parent', { id: key(), name: DataTypes.STRING, score: DataTypes.INTEGER, owner_id: DataTypes.INTEGER }),
    Child: define('Child', { id: key(), parent_id: DataTypes.INTEGER }),
    Grandchild: define('Grandchild', { id: key(), child_id: DataTypes.INTEGER }),
    Tag: define('Tag', { id: key() }),
    Tagging: define('Tagging', { parent_id: key(), tag_id: key() }),
  };
  const plain = { constraints: false, hooks: false };
  m.Parent.hasMany(m.Child, { ...plain, foreignKey: 'parent_id', as: 'children' });
  m.Child.hasMany(m.Grandchild, { ...plain, foreignKey: 'child_id', as: 'grandchildren' });
  m.Parent.belongsTo(m.Parent, { ...plain, foreignKey: 'owner_id', as: 'owner' });
  m.Parent.belongsToMany(m.Tag, { ...plain, through: m.Tagging, foreignKey: 'parent_id', otherKey: 'tag_id', as: 'tags' });
  return m;
}

/**
 * Builds the operations' SQL on throwaway models and reports every reference to a tenant table that
 * lacks the tenant predicate. `filters: false` (writeOnly mode) checks the inserts only.
 */
export function runCanary(sequelize: Sequelize, options: { filters: boolean }): CanaryReport {
  const started = performance.now();
  const s = sequelize as unknown as Hookable;
  const ownQuery = Object.hasOwn(s, 'query');
  const ownRunHooks = Object.hasOwn(s, 'runHooks');
  const originalQuery = s.query;
  const originalRunHooks = s.runHooks;
  let recording: Captured[] | undefined;
  const report: CanaryReport = { operations: [], ms: 0 };
  let models: CanaryModels | undefined;
  // The application's define hooks are not run for the throwaway models; nothing else runs hooks here.
  s.runHooks = function (this: unknown, hook: unknown, ...rest: unknown[]) {
    if (hook === 'beforeDefine' || hook === 'afterDefine') return undefined;
    return originalRunHooks.call(this, hook, ...rest);
  };
  s.query = (sql: unknown, queryOptions?: unknown) => {
    const text = typeof sql === 'string' ? sql : String((sql as { query?: unknown })?.query ?? sql);
    if (!recording) throw new MultitenantError('canary: a statement outside the recording', { operation: 'multitenant' });
    // Writes hand over `{ query, bind }`; the bind values may also come in the options.
    const bind = (sql as { bind?: unknown })?.bind ?? (queryOptions as { bind?: unknown } | undefined)?.bind;
    recording.push({ sql: text, bind: Array.isArray(bind) ? bind : [] });
    return new Promise(() => undefined);
  };
  try {
    const m = defineModels(sequelize);
    models = m;
    const tables = new Map(Object.values(m).map((model) => [(model as unknown as { tableName: string }).tableName, model.name]));
    withTenant(CANARY_TENANT, () => {
      for (const op of OPERATIONS) {
        if (!options.filters && op.filters) continue;
        recording = [];
        let error: unknown;
        try {
          // A refusal comes back as a rejected promise (seen: nothing was recorded); nothing else settles.
          (op.run(m) as Promise<unknown> | undefined)?.catch?.(() => undefined);
        } catch (e) {
          error = e;
        }
        const statements = recording;
        recording = undefined;
        const unscoped: string[] = [];
        const seen = new Set<string>();
        for (const statement of statements) {
          for (const f of inspect(statement, tables, op.filters)) {
            seen.add(f.table);
            if (!f.scoped) unscoped.push(f.reference);
          }
        }
        const missing = op.models.map((name) => `${m.Parent.name.replace(/Parent$/, '')}${name}`).filter((name) => !seen.has(name));
        if (statements.length === 0)
          unscoped.push(`no statement was built synchronously${error instanceof Error ? ` (${error.message})` : ''}`);
        else if (missing.length > 0) unscoped.push(`the statement does not name ${missing.join(', ')}`);
        report.operations.push({ path: op.path, statements: statements.map((x) => x.sql), unscoped });
      }
    });
  } finally {
    if (ownQuery) s.query = originalQuery;
    else delete (s as Partial<Hookable>).query;
    if (ownRunHooks) s.runHooks = originalRunHooks;
    else delete (s as Partial<Hookable>).runHooks;
    recording = undefined;
    if (models) {
      for (const model of Object.values(models)) {
        s.modelManager.removeModel(model);
        // Anything of an operation still pending can never reach the database through these models.
        Object.defineProperty(model, 'queryInterface', {
          get() {
            throw new MultitenantError('canary model', { operation: 'multitenant' });
          },
        });
      }
    }
  }
  report.ms = performance.now() - started;
  return report;
}

/** Runs the canary and throws a MultitenantError naming every path whose SQL lacks the tenant. */
export function assertCanary(sequelize: Sequelize, options: { filters: boolean }): CanaryReport {
  const report = runCanary(sequelize, options);
  const failed = report.operations.filter((op) => op.unscoped.length > 0);
  if (failed.length === 0) return report;
  const version = String((sequelize.constructor as { version?: unknown }).version ?? 'unknown');
  throw new MultitenantError(
    `the install-time canary found SQL built by this Sequelize (${version}) without the tenant predicate, so these paths are no longer scoped: ${failed
      .map((op) => `${op.path}: ${op.unscoped.join('; ')}`)
      .join(' | ')}. Nothing unscoped was sent; see "Supported versions" in the README`,
    { operation: 'multitenant' },
  );
}
