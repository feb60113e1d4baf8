// The code blocks of the README and of docs/: extracted with where they came from, for test/docs.test.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type MarkKind = 'run' | 'output' | 'serve' | 'requests' | 'file' | 'skip';

export interface Block {
  /** `README.md:42` — the file and the line of the opening fence. */
  readonly at: string;
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  /**
   * `<!-- docs-check: run NAME -->`: run as this file; `output NAME`: what it prints; `serve NAME`: a server
   * program, run as this file; `requests NAME`: the requests sent to it and the answers expected; `file NAME`:
   * a module the programs import, written as this file; `skip`: not checked.
   */
  readonly mark?: { kind: MarkKind; name?: string };
}

const root = join(__dirname, '..', '..');

/** The documents whose code blocks are checked: the README and every Markdown file of docs/. */
export function documents(): string[] {
  return [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => `docs/${f}`),
  ];
}

export function blocksOf(file: string): Block[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const indent = (open[1] as string).length;
    const start = i;
    const code: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i] as string); i++) code.push((lines[i] as string).slice(indent));
    let mark: Block['mark'];
    for (let j = start - 1; j >= 0 && j >= start - 3; j--) {
      const m = /<!-- docs-check: (run|output|serve|requests|file|skip)(?: (\S+))? -->/.exec(lines[j] as string);
      if (m) {
        mark = { kind: m[1] as MarkKind, name: m[2] };
        break;
      }
      if ((lines[j] as string).trim() !== '') break;
    }
    blocks.push({ at: `${file}:${start + 1}`, file, line: start + 1, lang: open[2] as string, code: code.join('\n'), mark });
  }
  return blocks;
}

/** Languages that are type-checked; the rest (sh, sql, text, json) are shown, not compiled. */
export const CHECKED = new Set(['ts', 'typescript', 'js', 'javascript']);
