// The canary's reading of the SQL it built (canary.ts): tokens with their parenthesis depth, as
// PostgreSQL splits them (identifiers, strings, numbers, $n parameters, punctuation), and every reference
// to a canary table checked to carry the throwaway tenant where it must.

/** The throwaway tenant: any value of the column's type would do. */
export const CANARY_TENANT = 7104963;
/** The throwaway models' tenant column. */
export const TENANT = 'tenant_id';

/** One statement the canary recorded instead of sending it. */
export interface Captured {
  sql: string;
  bind: unknown[];
}

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

export interface Finding {
  /** How the statement refers to the table: `JOIN "t" AS "a"`, `FROM "t"`, `UPDATE "t"`, `INSERT INTO "t"`. */
  reference: string;
  table: string;
  scoped: boolean;
}

/** Every reference to a canary table in one statement, and whether it carries the tenant where it must. */
export function inspect(captured: Captured, tables: ReadonlyMap<string, string>, filters: boolean): Finding[] {
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
