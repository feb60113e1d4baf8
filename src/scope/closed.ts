import { Op, Utils } from 'sequelize';
import { type RefusalDetails, UnsafeConditionError } from '../errors';

// The application's condition (root where, include.on, include.where, through.where) is ANDed with the
// tenant predicate as ONE closed term, whatever its shape. Two mechanisms make that hold:
// 1. `closed(where)` hands Sequelize `{ [Op.and]: [where] }`, which it always renders in parentheses —
//    a literal, `sequelize.where`, `{ [Op.not]: literal }` or a key whose value is a literal included
//    (Sequelize renders those raw, unparenthesised, anywhere else).
// 2. The raw text Sequelize copies into SQL unchanged — a literal's text, a `fn` name, a `cast` type, a
//    `sequelize.where` comparator — must itself be a closed term: balanced parentheses that never close
//    more than they opened, no unterminated quote, no comment, no second statement. Otherwise
//    `literal('true) OR (true')` would reopen the parentheses of (1). Such a text is refused.

/** What a condition is checked under (scope.ts's Scope is one): the model it is on, and how a refusal names it. */
export interface ConditionScope {
  readonly meta: { readonly model: unknown };
  /** True when the instance was made with `quoteIdentifiers: false` (keys and columns are then raw SQL). */
  readonly rawIdentifiers: boolean;
  readonly details: RefusalDetails;
}

/** `{ [Op.and]: [where] }`: rendered by Sequelize as `(<where>)` for every shape of `where`. */
export function closed(where: unknown): unknown {
  return { [Op.and]: [where] };
}

type MethodClass = abstract new (...args: never[]) => object;
const classes = Utils as unknown as Record<'SequelizeMethod' | 'Literal' | 'Fn' | 'Cast' | 'Where' | 'Json' | 'Col', MethodClass>;
const { SequelizeMethod, Literal, Fn, Cast, Where, Json, Col } = classes;

/** What PostgreSQL's lexer takes as a character of an identifier: letters, digits, _, $ and every non-ASCII character. */
const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const isIdentifierChar = (c: string | undefined) => c !== undefined && IDENTIFIER_CHAR.test(c);

/**
 * Why `text` is not a closed SQL term, or undefined when it is. Follows PostgreSQL's lexer where a
 * difference would matter; where the meaning depends on a setting (a backslash in a plain string under
 * standard_conforming_strings) the text is refused rather than guessed.
 */
export function unclosedReason(text: string): string | undefined {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === "'" || c === '"') {
      // 'it''s', "a""b"; an E'...' string (E starting a token) takes backslash escapes.
      const escapes = c === "'" && (text[i - 1] === 'E' || text[i - 1] === 'e') && !isIdentifierChar(text[i - 2]);
      let j = i + 1;
      for (; j < n; j++) {
        if (text[j] === '\\' && c === "'") {
          if (!escapes) return 'a backslash in a string (its meaning depends on standard_conforming_strings)';
          j++;
        } else if (text[j] === c) {
          if (text[j + 1] === c) j++;
          else break;
        }
      }
      if (j >= n) return `an unterminated ${c === "'" ? 'string' : 'quoted identifier'}`;
      i = j;
    } else if (c === '$' && !isIdentifierChar(text[i - 1])) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(text.slice(i));
      if (!tag) continue; // a bind parameter ($1) or a lone $
      const end = text.indexOf(tag[0], i + tag[0].length);
      if (end < 0) return 'an unterminated dollar-quoted string';
      i = end + tag[0].length - 1;
    } else if ((c === '-' && next === '-') || (c === '/' && next === '*')) {
      return 'a comment';
    } else if (c === ';') {
      return 'a statement separator (;)';
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth < 0) return 'a parenthesis closed that it did not open';
    }
  }
  return depth === 0 ? undefined : 'a parenthesis it did not close';
}

/** An identifier Sequelize may copy unquoted (quoteIdentifiers: false): letters, digits, _, $ and the dots of `a.b` / `$a.b$`. */
const PLAIN_IDENTIFIER = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\$?$/;

function refuse(scope: ConditionScope, why: string, fragment: string): never {
  throw new UnsafeConditionError(
    `refused a raw SQL condition with ${why}: ANDed with the tenant predicate it could widen the query to other tenants. Write it as one closed term; nothing was sent`,
    { ...scope.details, fragment },
  );
}

/** The operators Sequelize renders among a condition's symbol keys (others it ignores). */
const OPERATORS: ReadonlySet<symbol> = new Set(Object.values(Op) as symbol[]);

/** Raw SQL text as Sequelize copies it: a primitive, checked to be a closed term when it is text. */
function rawText(value: unknown, scope: ConditionScope, what: string): unknown {
  if (value === undefined || value === null) return value;
  const type = typeof value;
  if (type === 'number' || type === 'bigint' || type === 'boolean') return value;
  if (type !== 'string') refuse(scope, `${what} that is not a plain string`, String(type));
  const reason = unclosedReason(value as string);
  if (reason) refuse(scope, reason, value as string);
  return value;
}

/** An identifier: quoted by Sequelize, or — with quoteIdentifiers: false — raw SQL that must be a plain identifier. */
function identifier(value: unknown, scope: ConditionScope): unknown {
  if (typeof value !== 'string') return rawText(value, scope, 'a column name');
  if (scope.rawIdentifiers && !PLAIN_IDENTIFIER.test(value) && !value.startsWith('*')) {
    refuse(scope, 'a column name that is not a plain identifier (quoteIdentifiers: false copies it into the SQL as it is)', value);
  }
  return value;
}

/** A new Sequelize method object of the base class `C` (a subclass renders as its base: it is rebuilt as one). */
function method(C: MethodClass, fields: Record<string, unknown>): object {
  const copy = Object.create(C.prototype) as Record<string, unknown>;
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) copy[key] = value;
  return copy;
}

/**
 * A copy of an application's condition that is what gets rendered — so that what was checked is what is
 * sent: every value read once (a getter, a Proxy, a prototype cannot answer the check and the SQL
 * differently), plain objects for every container (their rendered keys: enumerable strings, operator
 * symbols), Sequelize method objects rebuilt from their base class with their fields read as Sequelize
 * reads them (inherited ones too). Refused with UnsafeConditionError: raw SQL text — a `literal`'s, an
 * `fn` name, a `cast` type, a `where` comparator, a `json` path — that is not a primitive or not one
 * closed term; a kind of method Sequelize renders by its own `toString`; a function (Sequelize would
 * call a value's `replace` and paste what it returns); a condition that contains itself. Dates, buffers
 * and `String` objects become plain values. With `quoteIdentifiers: false` keys and column names must
 * be plain identifiers.
 */
export function canonicalCondition(where: unknown, scope: ConditionScope, path: Set<object> = new Set(), unescaped = false): unknown {
  if (where === null || where === undefined) return where;
  const type = typeof where;
  if (type === 'function') refuse(scope, 'a function in a condition', 'function');
  if (type === 'string' && unescaped && (where as string).includes("'")) {
    refuse(
      scope,
      'a quote in a value of a RANGE or HSTORE column (Sequelize writes those values into the SQL without escaping them)',
      where as string,
    );
  }
  if (type !== 'object') return where;
  const o = where as object;
  if (path.has(o)) refuse(scope, 'a condition that contains itself', 'cycle');
  if (o instanceof Date) return ownDate(o);
  if (ArrayBuffer.isView(o)) return Buffer.from(o.buffer.slice(o.byteOffset, o.byteOffset + o.byteLength));
  if (o instanceof String) return String.prototype.valueOf.call(o);
  path.add(o);
  try {
    const deep = (v: unknown, underUnescaped = unescaped) => canonicalCondition(v, scope, path, underUnescaped);
    if (Array.isArray(o)) {
      const length = o.length;
      const out: unknown[] = [];
      for (let i = 0; i < length; i++) out.push(deep(o[i]));
      return out;
    }
    if (o instanceof SequelizeMethod) {
      const read = (key: string) => Reflect.get(o, key);
      if (o instanceof Literal) return method(Literal, { val: rawText(read('val'), scope, 'a literal') });
      if (o instanceof Fn) {
        const args = read('args');
        return method(Fn, { fn: rawText(read('fn'), scope, 'a function name'), args: deep(args) });
      }
      if (o instanceof Cast) {
        // Sequelize sends the type upper-cased (`'ß'` becomes `'SS'`): check what is sent.
        const castType = read('type');
        if (typeof castType !== 'string') refuse(scope, 'a cast type that is not a plain string', String(typeof castType));
        rawText(castType.toUpperCase(), scope, 'a cast type');
        return method(Cast, { val: deep(read('val')), type: castType, json: read('json') === true });
      }
      if (o instanceof Where) {
        const comparator = read('comparator');
        const attribute = read('attribute');
        return method(Where, {
          attribute: attributeOf(attribute, scope, path),
          comparator: typeof comparator === 'symbol' ? comparator : rawText(comparator, scope, 'a comparator'),
          logic: deep(read('logic')),
        });
      }
      if (o instanceof Json) {
        const conditions = read('conditions');
        const value = read('value');
        return method(Json, {
          conditions: conditions === undefined ? undefined : jsonConditions(conditions, scope, path),
          path: rawText(read('path'), scope, 'a JSON path'),
          value: value === undefined ? undefined : rawText(value, scope, 'a JSON value'),
        });
      }
      if (o instanceof Col) {
        const col = read('col');
        return method(Col, { col: Array.isArray(col) ? [...col].map((c) => identifier(c, scope)) : identifier(col, scope) });
      }
      refuse(scope, 'a kind of Sequelize method that cannot be checked', o.constructor?.name ?? 'SequelizeMethod');
    }
    // every other object is a condition to Sequelize (its operators, for a class instance): a plain copy
    const out: Record<string | symbol, unknown> = {};
    const columns = unescapedColumns(scope);
    for (const key of Object.keys(o)) {
      if (scope.rawIdentifiers && !PLAIN_IDENTIFIER.test(key)) {
        refuse(scope, 'a key that is not a plain identifier (quoteIdentifiers: false copies keys into the SQL as they are)', key);
      }
      out[key] = deep((o as Record<string, unknown>)[key], unescaped || columns.has(columnOfKey(key)));
    }
    for (const key of Object.getOwnPropertySymbols(o)) if (OPERATORS.has(key)) out[key] = deep((o as Record<symbol, unknown>)[key]);
    return out;
  } finally {
    path.delete(o);
  }
}

/** A `sequelize.where` attribute: a method (col, fn, cast), a column name, or a model attribute's definition. */
function attributeOf(attribute: unknown, scope: ConditionScope, path: Set<object>): unknown {
  if (attribute instanceof SequelizeMethod || attribute === null || typeof attribute !== 'object') {
    return typeof attribute === 'string' ? identifier(attribute, scope) : canonicalCondition(attribute, scope, path);
  }
  // Model.rawAttributes.x: Sequelize renders `<Model.name>.<field>` as identifiers
  const a = attribute as { Model?: { name?: unknown }; field?: unknown; fieldName?: unknown };
  const name = a.Model?.name;
  return {
    Model: { name: identifier(name, scope) },
    field: a.field === undefined ? undefined : identifier(a.field, scope),
    fieldName: a.fieldName === undefined ? undefined : identifier(a.fieldName, scope),
  };
}

/** `sequelize.json({ a: { b: value } })`: Sequelize writes each leaf as `= '<value>'` without escaping it. */
function jsonConditions(conditions: unknown, scope: ConditionScope, path: Set<object>): unknown {
  if (conditions === null || typeof conditions !== 'object') {
    rawText(`'${String(conditions)}'`, scope, 'a JSON value');
    return conditions;
  }
  if (path.has(conditions)) refuse(scope, 'a condition that contains itself', 'cycle');
  path.add(conditions);
  try {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(conditions)) {
      rawText(key, scope, 'a JSON path');
      const value = (conditions as Record<string, unknown>)[key];
      out[key] = value !== null && typeof value === 'object' ? jsonConditions(value, scope, path) : value;
      if (value === null || typeof value !== 'object') rawText(`'${String(value)}'`, scope, 'a JSON value');
    }
    return out;
  } finally {
    path.delete(conditions);
  }
}

/**
 * With `quoteIdentifiers: false` the keys of a SET list or an INSERT row are raw SQL too: each must be a
 * plain identifier.
 */
export function assertPlainKeys(values: object, scope: ConditionScope): void {
  if (!scope.rawIdentifiers) return;
  for (const key of Object.keys(values)) {
    if (!PLAIN_IDENTIFIER.test(key)) refuse(scope, 'a column name that is not a plain identifier (quoteIdentifiers: false)', key);
  }
}

/**
 * The common shape `{ id: 1, name: 'x', price: [1, 2] }` — string keys whose values are plain values or
 * arrays of them — as a fresh copy, each key read once (what was checked is what Sequelize renders; a
 * key Sequelize does not print, a non-enumerable one, is not copied). Undefined for anything else,
 * which `closed` wraps. Sequelize renders each key as one closed comparison, so the tenant column can be
 * added as one more key (the SQL a hand-written filter gives).
 */
export function flatCopy(where: object, scope: ConditionScope): Record<string, unknown> | undefined {
  if (Object.getPrototypeOf(where) !== Object.prototype) return undefined;
  if (Object.getOwnPropertySymbols(where).length > 0) return undefined;
  const unescaped = unescapedColumns(scope);
  const raw = scope.rawIdentifiers;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(where)) {
    if (raw && !PLAIN_IDENTIFIER.test(key)) return undefined;
    if (unescaped.size > 0 && unescaped.has(columnOfKey(key))) return undefined;
    const value = (where as Record<string, unknown>)[key];
    if (Array.isArray(value)) {
      const items: unknown[] = [];
      for (const item of [...value]) {
        if (!isPlainValue(item)) return undefined;
        items.push(item instanceof Date ? ownDate(item) : item);
      }
      copy[key] = items;
    } else if (isPlainValue(value)) copy[key] = value instanceof Date ? ownDate(value) : value;
    else return undefined;
  }
  return copy;
}

/** A Date of our own with the same time: a subclass, or a Date with its own `toString`, never reaches Sequelize. */
function ownDate(date: Date): Date {
  return new Date(Date.prototype.getTime.call(date));
}

/** `'$Notes.rng$'`, `'Notes.rng'`, `'rng'` → `rng`. */
function columnOfKey(key: string): string {
  const bare = key.startsWith('$') && key.endsWith('$') ? key.slice(1, -1) : key;
  return bare.slice(bare.lastIndexOf('.') + 1);
}

const unescapedCache = new WeakMap<object, { count: number; names: Set<string> }>();

/**
 * The attributes and columns, of every model of the instance, whose type Sequelize writes into the SQL
 * without escaping the value (`escape: false` with a text format of its own: RANGE, HSTORE — a `'` in a
 * range bound or an hstore value ends the string Sequelize opened). A condition's text values under
 * such a key must hold no `'`.
 */
function unescapedColumns(scope: ConditionScope): Set<string> {
  const sequelize = (scope.meta.model as unknown as { sequelize?: { modelManager?: { models: unknown[] } } }).sequelize;
  const models = (sequelize?.modelManager?.models ?? []) as Array<{ rawAttributes?: Record<string, { field?: string; type?: unknown }> }>;
  const cached = sequelize && unescapedCache.get(sequelize);
  if (cached && cached.count === models.length) return cached.names;
  const names = new Set<string>();
  for (const model of models) {
    for (const [name, def] of Object.entries(model.rawAttributes ?? {})) {
      const type = def.type as { escape?: boolean; key?: string; constructor?: { key?: string } } | undefined;
      const key = type?.key ?? type?.constructor?.key;
      if (type?.escape === false && (key === 'RANGE' || key === 'HSTORE')) names.add(name).add(def.field ?? name);
    }
  }
  if (sequelize) unescapedCache.set(sequelize, { count: models.length, names });
  return names;
}

/** A value Sequelize escapes as one literal: null, a string, number, boolean, bigint or Date. */
export function isPlainValue(value: unknown): boolean {
  const type = typeof value;
  return value === null || type === 'string' || type === 'number' || type === 'boolean' || type === 'bigint' || value instanceof Date;
}

interface IncludeConditions {
  on?: unknown;
  where?: unknown;
  through?: { where?: unknown };
  include?: IncludeConditions[];
}

/**
 * The conditions of every include of a statement, at every level — of tenant and global models alike:
 * a comment in a global include's ON would cut off the tenant conditions that follow it in the SQL —
 * replaced in place by their canonical copies (Sequelize renders the include objects it is given).
 */
export function canonicalIncludes(includes: unknown, scope: ConditionScope): void {
  if (!Array.isArray(includes)) return;
  for (const include of includes as IncludeConditions[]) {
    if (!include || typeof include !== 'object') continue;
    if (include.on !== undefined) include.on = canonicalCondition(include.on, scope);
    if (include.where !== undefined) include.where = canonicalCondition(include.where, scope);
    if (include.through && typeof include.through === 'object' && include.through.where !== undefined) {
      include.through.where = canonicalCondition(include.through.where, scope);
    }
    canonicalIncludes(include.include, scope);
  }
}
