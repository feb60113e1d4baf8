// Reads the TAP logs of CI's runs and prints one line per run with its own counts, and, for the run with
// the auditor on, how many tests ran under it (from test/helpers/audit-census.ts's per-file census).
// Usage: node .ci/summary.mjs <name>=<file.tap>[,<census.jsonl>] ...
import { existsSync, readFileSync } from 'node:fs';

const runs = process.argv.slice(2).map((arg) => {
  const [name, files] = arg.split('=');
  const [tap, census] = files.split(',');
  return { name, tap, census };
});

/** Test lines of a TAP log: { file, title, outcome }. */
function testsOf(tap) {
  const tests = [];
  for (const line of readFileSync(tap, 'utf8').split('\n')) {
    const m = /^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/.exec(line);
    if (!m) continue;
    const [, status, title, directive] = m;
    const outcome = directive === 'SKIP' ? 'skipped' : directive === 'TODO' ? 'todo' : status === 'ok' ? 'passed' : 'failed';
    const cut = title.indexOf(' › ');
    tests.push({ file: cut > 0 ? title.slice(0, cut) : '', title, outcome });
  }
  return tests;
}

for (const { name, tap, census } of runs) {
  if (!existsSync(tap)) {
    console.log(`${name}: did not run`);
    continue;
  }
  const tests = testsOf(tap);
  const n = (outcome) => tests.filter((t) => t.outcome === outcome).length;
  const files = new Set(tests.map((t) => t.file)).size;
  console.log(
    `${name}: ${tests.length} tests in ${files} files — ${n('passed')} passed, ${n('failed')} failed, ${n('skipped') + n('todo')} skipped`,
  );
  const skippedBy = new Map();
  for (const t of tests) if (t.outcome === 'skipped' || t.outcome === 'todo') skippedBy.set(t.file, (skippedBy.get(t.file) ?? 0) + 1);
  if (skippedBy.size > 0) {
    const list = [...skippedBy].sort((a, b) => b[1] - a[1]).map(([file, k]) => `${file || '(one file)'} ${k}`);
    console.log(`${name}: skipped by file — ${list.join(', ')}`);
  }
  if (!census) continue;
  if (!existsSync(census)) {
    console.log(`${name}: no census was written: cannot say how many tests ran under the auditor`);
    continue;
  }
  const byFile = new Map();
  for (const line of readFileSync(census, 'utf8').split('\n').filter(Boolean)) {
    const c = JSON.parse(line);
    const seen = byFile.get(c.file) ?? { statements: 0, audited: 0, unauditedInstances: 0 };
    seen.statements += c.statements;
    seen.audited += c.audited;
    seen.unauditedInstances += c.unauditedInstances;
    byFile.set(c.file, seen);
  }
  const ran = tests.filter((t) => t.outcome === 'passed' || t.outcome === 'failed');
  const group = { audited: [], partly: [], none: [], unknown: [] };
  for (const t of ran) {
    const c = byFile.get(t.file);
    if (!c) group.unknown.push(t);
    else if (c.statements === 0) group.none.push(t);
    else if (c.audited === c.statements) group.audited.push(t);
    else group.partly.push(t);
  }
  const statements = [...byFile.values()].reduce((s, c) => s + c.statements, 0);
  const audited = [...byFile.values()].reduce((s, c) => s + c.audited, 0);
  const partlyFiles = [...new Set(group.partly.map((t) => t.file))];
  console.log(
    `${name}: ${group.audited.length} of ${ran.length} tests ran in files whose every statement went through the auditor ` +
      `(${audited} of ${statements} statements sent by the library's instances were audited); ` +
      `${group.none.length} in files that send no statement through the library (parsers, types, subprocesses)` +
      (group.partly.length ? `; ${group.partly.length} in files with an instance that sets audit: 'off' (${partlyFiles.join(', ')})` : '') +
      (group.unknown.length ? `; ${group.unknown.length} in files the census did not see` : ''),
  );
}
