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

const SequelizeMethod = (Utils as unknown as { SequelizeMethod: abstract new (...args: never[]) => object }).SequelizeMethod;

/** The raw texts of a Sequelize method object that reach the SQL unescaped, as they are sent. */
function rawTexts(method: Record<string, unknown>): unknown[] {
  switch (method.constructor?.name) {
    case 'Literal':
      return [method.val];
    case 'Fn':
      return [method.fn];
    case 'Cast':
      // Sequelize sends the type upper-cased (`'ß'` becomes `'SS'`): check what is sent.
      return [typeof method.type === 'string' ? method.type.toUpperCase() : method.type];
    case 'Where':
      return [method.comparator];
    case 'Json':
      // `sequelize.json(path)` copies the path as it is; `sequelize.json({ a: value })` writes `= '<value>'`
      // without escaping the value.
      return [method.path, ...jsonConditionValues(method.conditions).map((v) => `'${v}'`)];
    default:
      return [];
  }
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

/**
 * Refuses a condition that carries raw SQL which is not a closed term (see above), before any SQL is
 * built. Walks plain objects (string and symbol keys), arrays and Sequelize method objects.
 */
export function assertClosedConditions(where: unknown, scope: Scope, seen = new Set<object>()): void {
  if (where === null || typeof where !== 'object' || seen.has(where)) return;
  seen.add(where);
  if (Array.isArray(where)) {
    for (const item of where) assertClosedConditions(item, scope, seen);
    return;
  }
  if (where instanceof SequelizeMethod) {
    const method = where as Record<string, unknown>;
    for (const text of rawTexts(method)) {
      if (typeof text !== 'string') continue;
      const reason = unclosedReason(text);
      if (reason) {
        throw new UnsafeConditionError(
          `refused a raw SQL condition with ${reason}: ANDed with the tenant predicate it could widen the query to other tenants. Write it as one closed term; nothing was sent`,
          { ...scope.details, fragment: text },
        );
      }
    }
    for (const value of Object.values(method)) assertClosedConditions(value, scope, seen);
    return;
  }
  const proto = Object.getPrototypeOf(where);
  if (proto !== Object.prototype && proto !== null) return; // a Date, a Buffer, an instance: escaped as a value
  for (const key of Reflect.ownKeys(where)) assertClosedConditions((where as Record<string | symbol, unknown>)[key], scope, seen);
}

/**
 * True for the common shape `{ id: 1, name: 'x', price: [1, 2] }`: string keys whose values are plain
 * values or arrays of them. Sequelize renders each key as one closed comparison, so the tenant column can
 * be added as one more key (the SQL a hand-written filter gives). Everything else is wrapped by `closed`.
 */
export function isFlatCondition(where: object): boolean {
  if (Object.getPrototypeOf(where) !== Object.prototype) return false;
  if (Object.getOwnPropertySymbols(where).length > 0) return false;
  for (const key in where) {
    const value = (where as Record<string, unknown>)[key];
    if (Array.isArray(value)) {
      for (const item of value) if (!isPlainValue(item)) return false;
    } else if (!isPlainValue(value)) return false;
  }
  return true;
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
