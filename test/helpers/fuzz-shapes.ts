// Condition and include shapes for the isolation fuzzer: a random boolean condition over a table's
// columns, rendered in every form Sequelize accepts — object, array, literal (with OR at its top, no
// parentheses around it), a literal under a key, sequelize.where, Op.not, a named scope — with an exact
// evaluator, so that the fuzzer can compute which rows the condition selects.
import fc from 'fast-check';
import { Op, type Sequelize } from 'sequelize';

export type Cond =
  | { c: 'eq'; col: string; k: number }
  | { c: 'gte'; col: string; k: number }
  | { c: 'const'; v: boolean }
  | { c: 'and' | 'or'; a: Cond; b: Cond }
  | { c: 'not'; a: Cond };

/** A condition over two integer columns (`key`, `num`) with small constants, up to three levels deep. */
export function condition(key: string, num: string, kMax: number, nMax: number): fc.Arbitrary<Cond> {
  // On Citus a join whose ON PostgreSQL folds to a constant `false` loses its co-location equality and is
  // refused ("complex joins are only supported when ..."): an error, not a leak — no constants there.
  const constants = process.env.MULTITENANT_TEST_DB === 'citus' ? [] : [fc.record({ c: fc.constant('const' as const), v: fc.boolean() })];
  const { tree } = fc.letrec<{ tree: Cond }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({ c: fc.constant('eq' as const), col: fc.constant(key), k: fc.integer({ min: 1, max: kMax }) }),
      fc.record({ c: fc.constant('gte' as const), col: fc.constant(num), k: fc.integer({ min: 0, max: nMax }) }),
      ...constants,
      fc.record({ c: fc.constantFrom('and' as const, 'or' as const), a: tie('tree'), b: tie('tree') }),
      fc.record({ c: fc.constant('not' as const), a: tie('tree') }),
    ),
  }));
  return tree.filter((x) => depth(x) <= 3);
}
function depth(x: Cond): number {
  return x.c === 'and' || x.c === 'or' ? 1 + Math.max(depth(x.a), depth(x.b)) : x.c === 'not' ? 1 + depth(x.a) : 0;
}

/** A column of a fuzzer row: the rows keep the tenant column `store_id` under `store`. */
const value = (r: Record<string, unknown>, col: string) => (col === 'store_id' && !(col in r) ? r.store : r[col]);

/** Whether a row satisfies the condition (the rows are never NULL in the columns used). */
export function holds(x: Cond, row: object): boolean {
  const r = row as Record<string, unknown>;
  switch (x.c) {
    case 'eq':
      return value(r, x.col) === x.k;
    case 'gte':
      return (value(r, x.col) as number) >= x.k;
    case 'const':
      return x.v;
    case 'and':
      return holds(x.a, row) && holds(x.b, row);
    case 'or':
      return holds(x.a, row) || holds(x.b, row);
    case 'not':
      return !holds(x.a, row);
  }
}

/** SQL text with the same meaning; its top level is NOT parenthesised (`(a) OR (b)`). `alias` qualifies columns. */
export function sqlText(x: Cond, alias = ''): string {
  const col = (c: string) => (alias ? `"${alias}"."${c}"` : `"${c}"`);
  switch (x.c) {
    case 'eq':
      return `${col(x.col)} = ${x.k}`;
    case 'gte':
      return `${col(x.col)} >= ${x.k}`;
    case 'const':
      return x.v ? 'true' : 'false';
    case 'and':
    case 'or':
      return `(${sqlText(x.a, alias)}) ${x.c.toUpperCase()} (${sqlText(x.b, alias)})`;
    case 'not':
      return `NOT (${sqlText(x.a, alias)})`;
  }
}

/** A closed where value of any mixed form with the meaning of `x` (usable inside Op.and / Op.or arrays). */
function nested(s: Sequelize, x: Cond, prefix: string, pick: number): unknown {
  const col = (c: string) => s.col(prefix ? `${prefix}.${c}` : c);
  const form = pick % 3;
  const next = Math.floor(pick / 3) + 7;
  if (form === 0) return s.literal(`(${sqlText(x, prefix)})`);
  switch (x.c) {
    case 'eq':
      return form === 1 ? { [x.col]: x.k } : s.where(col(x.col), Op.eq, x.k);
    case 'gte':
      return form === 1 ? { [x.col]: { [Op.gte]: x.k } } : s.where(col(x.col), Op.gte, x.k);
    case 'const':
      return s.literal(x.v ? '(true)' : '(false)');
    case 'and':
    case 'or':
      return { [x.c === 'and' ? Op.and : Op.or]: [nested(s, x.a, prefix, next), nested(s, x.b, prefix, next * 5 + 1)] };
    case 'not':
      // Sequelize drops NOT in front of a bare literal: give it an object.
      return { [Op.not]: { [Op.and]: [nested(s, x.a, prefix, next)] } };
  }
}

/** Objects and operators only, no literal and no sequelize.where. */
function pureObject(x: Cond): unknown {
  switch (x.c) {
    case 'eq':
      return { [x.col]: x.k };
    case 'gte':
      return { [x.col]: { [Op.gte]: x.k } };
    case 'const':
      return { id: x.v ? { [Op.gt]: 0 } : { [Op.lt]: 0 } };
    case 'and':
    case 'or':
      return { [x.c === 'and' ? Op.and : Op.or]: [pureObject(x.a), pureObject(x.b)] };
    case 'not':
      return { [Op.not]: pureObject(x.a) };
  }
}

export const TOP_FORMS = [
  'literal',
  'literal under a key',
  'sequelize.where',
  'object',
  'pure object',
  'array',
  'Op.and of a literal',
] as const;
export type TopForm = (typeof TOP_FORMS)[number];

/**
 * The root where the application hands over, with the meaning of `x`. The literal forms keep an OR at
 * their top level unparenthesised: the shape that widened queries when ANDed without closing it.
 */
export function topWhere(s: Sequelize, x: Cond, form: TopForm, pick: number, prefix = ''): unknown {
  switch (form) {
    case 'literal':
      return s.literal(sqlText(x, prefix));
    case 'literal under a key':
      return { [x.c === 'eq' || x.c === 'gte' ? x.col : 'id']: s.literal(sqlText(x, prefix)) };
    case 'sequelize.where':
      return x.c === 'or'
        ? s.where(s.literal(`(${sqlText(x.a, prefix)})`), Op.eq, s.literal(`true OR (${sqlText(x.b, prefix)})`))
        : s.where(s.literal(`(${sqlText(x, prefix)})`), Op.eq, s.literal('true'));
    case 'object':
      return nested(s, x, prefix, pick);
    case 'pure object':
      return pureObject(x);
    case 'array': {
      // An array is an AND; Sequelize needs one object in it (`id > 0` holds for every row).
      const always = { id: { [Op.gt]: 0 } };
      return x.c === 'and'
        ? [nested(s, x.a, prefix, pick), always, nested(s, x.b, prefix, pick + 1)]
        : [always, nested(s, x, prefix, pick)];
    }
    case 'Op.and of a literal':
      return { [Op.and]: [s.literal(sqlText(x, prefix))] };
  }
}

/** Ways to name a table in a queryInterface call. */
export const TABLE_NAMINGS = ['string', '"quoted"', '{ tableName }', '{ tableName, schema }'] as const;
export function nameTable(table: string, how: (typeof TABLE_NAMINGS)[number], schema: string): unknown {
  switch (how) {
    case 'string':
      return table;
    case '"quoted"':
      return `"${table}"`;
    case '{ tableName }':
      return { tableName: table };
    case '{ tableName, schema }':
      return { tableName: table, schema };
  }
}
