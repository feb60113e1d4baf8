// What a SQL message holds, read as PostgreSQL splits it: the statements of a simple-protocol message
// (separated by top-level semicolons) and the first keyword of each, past comments. Strings ('...',
// E'...' with backslash escapes), quoted identifiers, dollar quotes ($tag$...$tag$) and comments (--,
// nested /* */) are skipped whole. Anything it cannot read to its end (an unterminated string or
// comment) is reported as unreadable: callers then assume the worst (several statements, any kind).

export interface MessageShape {
  /** The statements' first keywords (upper-cased), in order; '' for a statement that starts otherwise. */
  readonly heads: readonly string[];
  /** Every statement, without its leading comments and trailing semicolon. */
  readonly statements: readonly string[];
  /** False when a string, identifier or comment runs to the end of the text. */
  readonly readable: boolean;
}

const cache = new Map<string, MessageShape>();
const CACHE_MAX = 2000;

/** Where the quoted part that starts at `i` ends (the index after it), or -1 when it never ends. */
function skipQuoted(sql: string, i: number): number {
  const c = sql[i];
  if (c === '-' && sql[i + 1] === '-') {
    const end = sql.indexOf('\n', i + 2);
    return end === -1 ? sql.length : end + 1;
  }
  if (c === '/' && sql[i + 1] === '*') {
    let depth = 1;
    let j = i + 2;
    while (j < sql.length && depth > 0) {
      if (sql[j] === '/' && sql[j + 1] === '*') {
        depth++;
        j += 2;
      } else if (sql[j] === '*' && sql[j + 1] === '/') {
        depth--;
        j += 2;
      } else j++;
    }
    return depth === 0 ? j : -1;
  }
  if (c === "'" || c === '"') {
    const escapes = c === "'" && i > 0 && /[eE]/.test(sql[i - 1] as string) && !/[A-Za-z0-9_$]/.test(sql[i - 2] ?? '');
    let j = i + 1;
    while (j < sql.length) {
      if (escapes && sql[j] === '\\') j += 2;
      else if (sql[j] === c && sql[j + 1] === c) j += 2;
      else if (sql[j] === c) return j + 1;
      else j++;
    }
    return -1;
  }
  if (c === '$') {
    const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64))?.[0];
    // `$1` (a parameter) or a `$` inside a word is no dollar quote
    if (!tag || (i > 0 && /[A-Za-z0-9_$]/.test(sql[i - 1] as string))) return i + 1;
    const end = sql.indexOf(tag, i + tag.length);
    return end === -1 ? -1 : end + tag.length;
  }
  return i + 1;
}

/** Reads a message: its statements and their first keywords. */
export function shapeOf(sql: string): MessageShape {
  const known = cache.get(sql);
  if (known) return known;
  const statements: string[] = [];
  const heads: string[] = [];
  let readable = true;
  let start = -1; // where the current statement's first token is
  let i = 0;
  const close = (end: number) => {
    if (start !== -1) {
      const text = sql.slice(start, end).trim();
      statements.push(text);
      heads.push(/^[A-Za-z_]+/.exec(text)?.[0]?.toUpperCase() ?? '');
    }
    start = -1;
  };
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === ';') {
      close(i);
      i++;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const comment = (c === '-' && sql[i + 1] === '-') || (c === '/' && sql[i + 1] === '*');
    if (!comment && start === -1) start = i;
    const next = skipQuoted(sql, i);
    if (next === -1) {
      readable = false;
      break;
    }
    i = next;
  }
  close(sql.length);
  const shape: MessageShape = { heads, statements, readable };
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(sql, shape);
  return shape;
}

/** One readable statement (a trailing semicolon and comments allowed). */
export function isSingleStatement(sql: string): boolean {
  const shape = shapeOf(sql);
  return shape.readable && shape.statements.length === 1;
}
