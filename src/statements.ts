// What a SQL message holds, read as PostgreSQL splits it: the statements of a simple-protocol message
// (separated by top-level semicolons) and the first keyword of each, past comments. Strings ('...',
// E'...' with backslash escapes), quoted identifiers, dollar quotes ($tag$...$tag$) and comments (--,
// nested /* */) are skipped whole. Anything it cannot read to its end (an unterminated string or
// comment), or cannot read for certain (a backslash in a '...' string, which a session with
// standard_conforming_strings off reads as an escape), is reported as unreadable: callers then assume
// the worst (several statements, any kind).

export interface MessageShape {
  /** The statements' first keywords (upper-cased), in order; '' for a statement that starts otherwise. */
  readonly heads: readonly string[];
  /** Every statement, without its leading comments and trailing semicolon. */
  readonly statements: readonly string[];
  /** Every statement with its comments replaced by a space (what its keywords are). */
  readonly bare: readonly string[];
  /** False when a string, identifier or comment runs to the end of the text. */
  readonly readable: boolean;
}

const cache = new Map<string, MessageShape>();
const CACHE_MAX = 2000;

/** Where the quoted part that starts at `i` ends (the index after it), or -1 when it never ends. */
const WORD = /[A-Za-z0-9_$\u0080-\uffff]/;

/** Where the quoted part that starts at `i` ends (the index after it), -1 when it never ends, -2 when it cannot be read for certain. */
function skipQuoted(sql: string, i: number): number {
  const c = sql[i];
  if (c === '-' && sql[i + 1] === '-') {
    // PostgreSQL ends a line comment at \n or \r
    const m = /[\n\r]/.exec(sql.slice(i + 2));
    return m ? i + 2 + m.index + 1 : sql.length;
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
    const escapes = c === "'" && i > 0 && /[eE]/.test(sql[i - 1] as string) && !WORD.test(sql[i - 2] ?? '');
    let j = i + 1;
    while (j < sql.length) {
      if (sql[j] === '\\' && c === "'") {
        if (!escapes) return -2;
        j += 2;
      } else if (sql[j] === c && sql[j + 1] === c) j += 2;
      else if (sql[j] === c) return j + 1;
      else j++;
    }
    return -1;
  }
  if (c === '$') {
    const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i))?.[0];
    // `$1` (a parameter) or a `$` inside a word (`é$$` is an identifier) is no dollar quote
    if (!tag || (i > 0 && WORD.test(sql[i - 1] as string))) return i + 1;
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
  const bare: string[] = [];
  const heads: string[] = [];
  let readable = true;
  let start = -1; // where the current statement's first token is
  let text = ''; // the current statement without its comments
  let i = 0;
  const close = (end: number) => {
    if (start !== -1) {
      statements.push(sql.slice(start, end).trim());
      const b = text.trim();
      bare.push(b);
      heads.push(/^[A-Za-z_]+/.exec(b)?.[0]?.toUpperCase() ?? '');
    }
    start = -1;
    text = '';
  };
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === ';') {
      close(i);
      i++;
      continue;
    }
    if (/\s/.test(c)) {
      text += ' ';
      i++;
      continue;
    }
    const comment = (c === '-' && sql[i + 1] === '-') || (c === '/' && sql[i + 1] === '*');
    if (!comment && start === -1) start = i;
    const next = skipQuoted(sql, i);
    if (next < 0) {
      readable = false;
      break;
    }
    text += comment ? ' ' : sql.slice(i, next);
    i = next;
  }
  close(sql.length);
  const shape: MessageShape = { heads, statements, bare, readable };
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(sql, shape);
  return shape;
}

/** One readable statement (a trailing semicolon and comments allowed). */
export function isSingleStatement(sql: string): boolean {
  const shape = shapeOf(sql);
  return shape.readable && shape.statements.length === 1;
}

const namesCache = new Map<string, ReadonlySet<string> | undefined>();

/**
 * The names a message could refer to a table by, as PostgreSQL reads them: its unquoted words folded to
 * lower case and its quoted identifiers as written — also inside dollar-quoted bodies (a DO block's
 * code), never inside string literals or comments (a catalog query's `relname = 'products'` names no
 * table). Undefined when the message cannot be read to its end (it may name anything).
 */
export function namesIn(sql: string): ReadonlySet<string> | undefined {
  if (namesCache.has(sql)) return namesCache.get(sql);
  // U&"..." (identifiers with Unicode escapes) is not read here: it may name anything
  if (/U&["']/i.test(sql)) return undefined;
  const names = new Set<string>();
  let readable = true;
  const scan = (text: string): void => {
    let i = 0;
    while (i < text.length) {
      const c = text[i] as string;
      if (c === '"') {
        const end = skipQuoted(text, i);
        if (end < 0) {
          readable = false;
          return;
        }
        names.add(text.slice(i + 1, end - 1).replace(/""/g, '"'));
        i = end;
      } else if (c === '$' && !WORD.test(text[i - 1] ?? '')) {
        const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i))?.[0];
        const end = tag ? text.indexOf(tag, i + tag.length) : -1;
        if (tag && end === -1) {
          readable = false;
          return;
        }
        if (tag) scan(text.slice(i + tag.length, end));
        i = tag ? end + tag.length : i + 1;
      } else if (c === "'" || (c === '-' && text[i + 1] === '-') || (c === '/' && text[i + 1] === '*')) {
        const end = skipQuoted(text, i);
        if (end < 0) {
          readable = false;
          return;
        }
        i = end;
      } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
        const word = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(text.slice(i))?.[0] as string;
        names.add(word.toLowerCase());
        i += word.length;
      } else i++;
    }
  };
  scan(sql);
  const result = readable ? names : undefined;
  if (namesCache.size >= CACHE_MAX) namesCache.clear();
  namesCache.set(sql, result);
  return result;
}
