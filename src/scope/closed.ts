import { Op, Utils } from 'sequelize';
import { UnsafeConditionError } from '../errors';
import type { Scope } from './scope';

// The application's condition (root where, include.on, include.where, through.where) is ANDed with the
// tenant predicate as ONE closed term, whatever its shape. Two mechanisms make that hold:
// 1. `closed(where)` hands Sequelize `{ [Op.and]: [where] }`, which it always renders in parentheses —
//    a literal, `sequelize.where`, `{ [Op.not]: literal }` or a key whose value is a literal included
//    (Sequelize renders those raw, unparenthesised, anywhere else).
// 2. The raw text Sequelize copies into SQL unchanged — a literal's text, a `fn` name, a `cast` type, a
//    `sequelize.where` comparator — must itself be a closed term: balanced parentheses that never close
//    more than they opened, no unterminated quote, no comment, no second statement. Otherwise
//    `literal('true) OR (true')` would reopen the parentheses of (1). Such a text is refused.

/** `{ [Op.and]: [where] }`: rendered by Sequelize as `(<where>)` for every shape of `where`. */
export function closed(where: unknown): unknown {
  return { [Op.and]: [where] };
}

type MethodClass = abstract new (...args: never[]) => object;
const classes = Utils as unknown as Record<'SequelizeMethod' | 'Literal' | 'Fn' | 'Cast' | 'Where' | 'Json' | 'Col', MethodClass>;
const { SequelizeMethod, Literal, Fn, Cast, Where, Json, Col } = classes;

/** Why a raw text field is not one Sequelize copies as it was checked, or undefined when it is. */
const REFUSED = Symbol('refused');

/**
 * A raw text field as Sequelize will copy it into the SQL: an own data property holding a primitive.
 * An accessor could answer the check and the SQL differently; an object (an array, a `String`) is turned
 * into text by its own code: both are refused.
 */
function textField(method: object, key: string): unknown {
  const d = Object.getOwnPropertyDescriptor(method, key);
  if (!d) return undefined;
  if (!('value' in d)) return REFUSED;
  const v = d.value;
  return v !== null && (typeof v === 'object' || typeof v === 'function') ? REFUSED : v;
}

/**
 * The raw texts of a Sequelize method object that reach the SQL unescaped, as they are sent; REFUSED
 * for one that cannot be checked (a kind of method Sequelize renders by its own `toString`, a text that
 * is no primitive). By `instanceof`: a subclass is rendered as its base class is.
 */
function rawTexts(method: object, rawIdentifiers: boolean): unknown[] {
  if (method instanceof Literal) return [textField(method, 'val')];
  if (method instanceof Fn) return [textField(method, 'fn')];
  if (method instanceof Cast) {
    // Sequelize sends the type upper-cased (`'ß'` becomes `'SS'`): check what is sent.
    const type = textField(method, 'type');
    return [typeof type === 'string' ? type.toUpperCase() : type];
  }
  if (method instanceof Where) {
    // an operator symbol is mapped by Sequelize; a string is copied as it is
    const comparator = textField(method, 'comparator');
    return typeof comparator === 'symbol' ? [] : [comparator];
  }
  if (method instanceof Json) {
    // `sequelize.json(path)` copies the path as it is; `sequelize.json({ a: value })` writes `= '<value>'`
    // without escaping the value.
    const m = method as Record<string, unknown>;
    return [textField(method, 'path'), ...jsonConditionValues(m.conditions).map((v) => `'${v}'`)];
  }
  if (method instanceof Col) {
    // quoted as an identifier, unless the instance was made with quoteIdentifiers: false
    const col = textField(method, 'col');
    return rawIdentifiers || col === REFUSED ? [col] : [];
  }
  return [REFUSED];
}

function jsonConditionValues(conditions: unknown): string[] {
  if (conditions === null || conditions === undefined) return [];
  if (typeof conditions !== 'object') return [String(conditions)];
  return Object.values(conditions).flatMap(jsonConditionValues);
}

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

function refuse(scope: Scope, why: string, fragment: string): never {
  throw new UnsafeConditionError(
    `refused a raw SQL condition with ${why}: ANDed with the tenant predicate it could widen the query to other tenants. Write it as one closed term; nothing was sent`,
    { ...scope.details, fragment },
  );
}

/**
 * Refuses a condition that carries raw SQL which is not a closed term (see above), before any SQL is
 * built. Walks every object Sequelize may render as a condition — plain or not: Sequelize renders the
 * operators of a class instance too (a Date, a Buffer are values) — by its string and symbol keys,
 * arrays, and Sequelize method objects. With
 * `quoteIdentifiers: false` the keys themselves are raw SQL: each must be a plain identifier.
 */
export function assertClosedConditions(where: unknown, scope: Scope, seen = new Set<object>()): void {
  if (where === null || typeof where !== 'object' || seen.has(where)) return;
  seen.add(where);
  if (Array.isArray(where)) {
    for (const item of where) assertClosedConditions(item, scope, seen);
    return;
  }
  if (where instanceof Date || ArrayBuffer.isView(where)) return; // escaped as a value
  if (where instanceof SequelizeMethod) {
    for (const text of rawTexts(where, scope.rawIdentifiers)) {
      if (text === REFUSED)
        refuse(
          scope,
          'a raw text that is not a plain string (or a kind of method that cannot be checked)',
          String(where.constructor?.name ?? 'SequelizeMethod'),
        );
      if (typeof text !== 'string') continue;
      const reason = unclosedReason(text);
      if (reason) refuse(scope, reason, text);
    }
    for (const value of Object.values(where)) assertClosedConditions(value, scope, seen);
    return;
  }
  for (const key of Reflect.ownKeys(where)) {
    if (typeof key === 'string' && scope.rawIdentifiers && !PLAIN_IDENTIFIER.test(key)) {
      refuse(scope, 'a key that is not a plain identifier (quoteIdentifiers: false copies keys into the SQL as they are)', key);
    }
    assertClosedConditions((where as Record<string | symbol, unknown>)[key], scope, seen);
  }
}

/**
 * With `quoteIdentifiers: false` the keys of a SET list or an INSERT row are raw SQL too: each must be a
 * plain identifier.
 */
export function assertPlainKeys(values: object, scope: Scope): void {
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
export function flatCopy(where: object, rawIdentifiers: boolean): Record<string, unknown> | undefined {
  if (Object.getPrototypeOf(where) !== Object.prototype) return undefined;
  if (Object.getOwnPropertySymbols(where).length > 0) return undefined;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(where)) {
    if (rawIdentifiers && !PLAIN_IDENTIFIER.test(key)) return undefined;
    const value = (where as Record<string, unknown>)[key];
    if (Array.isArray(value)) {
      const items = [...value];
      for (const item of items) if (!isPlainValue(item)) return undefined;
      copy[key] = items;
    } else if (isPlainValue(value)) copy[key] = value;
    else return undefined;
  }
  return copy;
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
 * a comment in a global include's ON would cut off the tenant conditions that follow it in the SQL.
 */
export function assertIncludeConditions(includes: unknown, scope: Scope): void {
  if (!Array.isArray(includes)) return;
  for (const include of includes as IncludeConditions[]) {
    if (!include || typeof include !== 'object') continue;
    assertClosedConditions(include.on, scope);
    assertClosedConditions(include.where, scope);
    assertClosedConditions(include.through?.where, scope);
    assertIncludeConditions(include.include, scope);
  }
}
