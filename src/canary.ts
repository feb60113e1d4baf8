import { DataTypes, type Sequelize } from 'sequelize';
import { withTenant } from './context';
import { MultitenantError } from './errors';
import type { AnyModelStatic } from './models';
import type { CanaryReport } from './state';

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

/** The throwaway tenant: any value of the column's type would do. */
const CANARY_TENANT = 7104963;
const TENANT = 'tenant_id';
/** `hooks: false` is a Sequelize option its find/count types leave out. */
const NO_HOOKS: object = { hooks: false };

interface Captured {
  sql: string;
  bind: unknown[];
}

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

// ---------------------------------------------------------------------------------------------------
// Reading the SQL: tokens with their parenthesis depth, as PostgreSQL splits them (for the statements
// the canary builds: identifiers, strings, numbers, $n parameters, punctuation).

interface Token {
  text: string;
  /** Upper-cased text of a bare word; the unquoted name of a quoted identifier. */
  word: string;
  depth: number;
  quoted: boolean;
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      const text = sql.slice(i, j + 1);
      const inner = text
        .slice(1, -1)
        .split(c + c)
        .join(c);
      tokens.push({ text, word: c === '"' ? inner : text, depth, quoted: c === '"' });
      i = j + 1;
      continue;
    }
    const word = /^(?:[A-Za-z_][A-Za-z0-9_$]*|\$\d+|\d+(?:\.\d+)?|->>|->|<>|!=|<=|>=|::|.)/s.exec(sql.slice(i))?.[0] ?? c;
    if (word === ')') depth--;
    tokens.push({ text: word, word: /^[A-Za-z_]/.test(word) ? word.toUpperCase() : word, depth, quoted: false });
    if (word === '(') depth++;
    i += word.length;
  }
  return tokens;
}

/** A bare word (keyword) at a position. */
const isKeyword = (t: Token | undefined, ...words: string[]) => !!t && !t.quoted && words.includes(t.word);

/** The name an identifier token stands for, as PostgreSQL reads it (unquoted names fold to lower case). */
const identName = (t: Token | undefined) => (!t ? undefined : t.quoted ? t.word : t.text.toLowerCase());

/** Where a clause that starts at `from` ends: the next of `stops` at the same depth, or the end of that depth. */
function clauseEnd(tokens: Token[], from: number, depth: number, stops: readonly string[]): number {
  for (let i = from; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.depth < depth) return i;
    if (t.depth === depth && (isKeyword(t, ...stops) || t.text === ';')) return i;
  }
  return tokens.length;
}

const JOIN_STOPS = ['JOIN', 'LEFT', 'RIGHT', 'INNER', 'FULL', 'CROSS', 'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'OFFSET', 'RETURNING', 'ON'];
const WHERE_STOPS = ['GROUP', 'ORDER', 'LIMIT', 'OFFSET', 'RETURNING', 'HAVING', 'FOR'];

/**
 * True when tokens [start, end) hold `<qualifier>.<tenant column> = <the canary tenant>` at any depth
 * (the predicate may sit in parentheses of its own); an unqualified column counts when the statement
 * has one table (`qualifier` undefined).
 */
function hasTenantPredicate(tokens: Token[], start: number, end: number, qualifier: string | undefined, bind: unknown[]): boolean {
  for (let i = start; i < end; i++) {
    // A predicate inside a subquery constrains that subquery's rows, not this level's.
    if (tokens[i]?.text === '(' && isKeyword(tokens[i + 1], 'SELECT')) {
      i = clauseEnd(tokens, i + 1, (tokens[i] as Token).depth + 1, []);
      continue;
    }
    if (identName(tokens[i]) !== TENANT || (tokens[i] as Token).text.startsWith("'")) continue;
    const qualified = tokens[i - 1]?.text === '.';
    if (qualified ? identName(tokens[i - 2]) !== qualifier : qualifier !== undefined && qualifier !== '') continue;
    if (tokens[i + 1]?.text !== '=') continue;
    const value = tokens[i + 2]?.text ?? '';
    const bound = /^\$(\d+)$/.exec(value);
    const actual = bound ? bind[Number(bound[1]) - 1] : value.replace(/^'(.*)'$/, '$1');
    if (String(actual) === String(CANARY_TENANT)) return true;
  }
  return false;
}

interface Finding {
  /** How the statement refers to the table: `JOIN "t" AS "a"`, `FROM "t"`, `UPDATE "t"`, `INSERT INTO "t"`. */
  reference: string;
  table: string;
  scoped: boolean;
}

/** Every reference to a canary table in one statement, and whether it carries the tenant where it must. */
function inspect(captured: Captured, tables: ReadonlyMap<string, string>, filters: boolean): Finding[] {
  const tokens = tokenize(captured.sql);
  const findings: Finding[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    const prev = tokens[i - 1];
    const table = tables.get(identName(t) ?? '');
    if (!table) continue;
    // A table name is one identifier, possibly schema-qualified; skip a column reference "t"."col".
    if (tokens[i + 1]?.text === '.') continue;
    let nameStart = i;
    if (prev?.text === '.' && tokens[i - 2]) nameStart = i - 2;
    let keyword = tokens[nameStart - 1];
    // `JOIN ( "through" AS "a" INNER JOIN "target" AS "b" ON ... ) ON ...` (belongsToMany): the group's ONs count.
    const grouped = keyword?.text === '(' && isKeyword(tokens[nameStart - 2], 'JOIN');
    if (grouped) keyword = tokens[nameStart - 2];
    if (!isKeyword(keyword, 'FROM', 'JOIN', 'UPDATE', 'INTO')) continue;
    let next = i + 1;
    let alias: string | undefined;
    if (isKeyword(tokens[next], 'AS')) {
      alias = identName(tokens[next + 1]);
      next += 2;
    }
    const depth = t.depth;
    const reference = `${(keyword as Token).word} ${tokens
      .slice(nameStart, next)
      .map((x) => x.text)
      .join(' ')
      .replace(/ \. /g, '.')}`;
    const qualifier = alias ?? undefined;
    if ((keyword as Token).word === 'INTO') {
      findings.push({ reference, table, scoped: insertCarriesTenant(tokens, next, captured.bind) });
      continue;
    }
    if (!filters) continue;
    let scoped = false;
    if (grouped) {
      const close = clauseEnd(tokens, next, depth, []);
      const on = close + 1;
      const end = isKeyword(tokens[on], 'ON') ? clauseEnd(tokens, on + 1, depth - 1, JOIN_STOPS) : close;
      scoped = hasTenantPredicate(tokens, next, end, qualifier ?? identName(t), captured.bind);
    } else if ((keyword as Token).word === 'JOIN') {
      const on = tokens.findIndex((x, k) => k >= next && x.depth === depth && isKeyword(x, 'ON'));
      if (on >= 0)
        scoped = hasTenantPredicate(tokens, on + 1, clauseEnd(tokens, on + 1, depth, JOIN_STOPS), qualifier ?? identName(t), captured.bind);
    } else {
      const where = tokens.findIndex((x, k) => k >= next && x.depth === depth && isKeyword(x, 'WHERE'));
      const levelEnd = clauseEnd(tokens, next, depth, []);
      if (where >= 0 && where < levelEnd) {
        const end = clauseEnd(tokens, where + 1, depth, WHERE_STOPS);
        scoped =
          hasTenantPredicate(tokens, where + 1, end, qualifier ?? identName(t), captured.bind) ||
          (alias === undefined && hasTenantPredicate(tokens, where + 1, end, undefined, captured.bind));
      }
    }
    findings.push({ reference, table, scoped });
  }
  return findings;
}

/** `INSERT INTO t (c1, c2) VALUES (v1, v2)[, (...)]`: every row puts the canary tenant in the tenant column. */
function insertCarriesTenant(tokens: Token[], from: number, bind: unknown[]): boolean {
  if (tokens[from]?.text !== '(') return false;
  const depth = (tokens[from] as Token).depth + 1;
  const columns: string[] = [];
  let i = from + 1;
  for (; i < tokens.length && !(tokens[i]?.text === ')' && tokens[i]?.depth === depth - 1); i++) {
    if (tokens[i]?.text !== ',') columns.push(identName(tokens[i]) ?? '');
  }
  const index = columns.indexOf(TENANT);
  if (index < 0 || !isKeyword(tokens[i + 1], 'VALUES')) return false;
  let rows = 0;
  for (i += 2; tokens[i]?.text === '('; ) {
    const values: string[] = [];
    let j = i + 1;
    let current = '';
    for (; j < tokens.length && !(tokens[j]?.text === ')' && tokens[j]?.depth === depth - 1); j++) {
      const x = tokens[j] as Token;
      if (x.text === ',' && x.depth === depth) {
        values.push(current);
        current = '';
      } else current += x.text;
    }
    values.push(current);
    const value = values[index] ?? '';
    const bound = /^\$(\d+)$/.exec(value);
    if (String(bound ? bind[Number(bound[1]) - 1] : value.replace(/^'(.*)'$/, '$1')) !== String(CANARY_TENANT)) return false;
    rows++;
    i = j + 1;
    if (tokens[i]?.text === ',') i++;
  }
  return rows > 0;
}

// ---------------------------------------------------------------------------------------------------

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
  while (s.isDefined(`MultitenantCanary${suffix}Parent`)) suffix++;
  const prefix = `MultitenantCanary${suffix}`;
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
