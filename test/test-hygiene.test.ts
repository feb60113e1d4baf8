// Every test can fail: a check over the test files themselves (run in CI with the suite) that refuses the
// patterns that once made security tests pass whatever the library did —
// - a `.catch(() => <literal>)` whose value is used (it manufactures the result the test then expects);
// - `return t.pass(...)` (an early exit shown as a pass: use ava's `test.skip`, reported as skipped);
// - a test whose only assertion is `t.pass()`;
// - `instanceof Error` (any error at all) as the check of a refusal: check the library's own class.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import ts from 'typescript';

const ASSERTIONS = new Set([
  'is',
  'not',
  'deepEqual',
  'notDeepEqual',
  'like',
  'true',
  'false',
  'truthy',
  'falsy',
  'regex',
  'notRegex',
  'throws',
  'throwsAsync',
  'notThrows',
  'notThrowsAsync',
  'assert',
  'snapshot',
  'fail',
  'pass',
]);
const LITERALS = new Set([
  ts.SyntaxKind.ArrayLiteralExpression,
  ts.SyntaxKind.ObjectLiteralExpression,
  ts.SyntaxKind.NumericLiteral,
  ts.SyntaxKind.StringLiteral,
  ts.SyntaxKind.NoSubstitutionTemplateLiteral,
  ts.SyntaxKind.TrueKeyword,
  ts.SyntaxKind.FalseKeyword,
  ts.SyntaxKind.NullKeyword,
  ts.SyntaxKind.PrefixUnaryExpression,
]);

/** The problems of one test file's source, as `line: what`. */
function hygiene(source: string, file = 'x.test.ts'): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const problems: string[] = [];
  const at = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const isLiteral = (e: ts.Expression): boolean => {
    let x = e;
    while (ts.isParenthesizedExpression(x) || ts.isAsExpression(x)) x = x.expression;
    return LITERALS.has(x.kind) || (ts.isIdentifier(x) && x.text === 'undefined');
  };
  /** Is the value of `n` read (not a statement of its own, once `await`, parentheses and arrows handing it on are taken off)? */
  const used = (n: ts.Node): boolean => {
    const p = n.parent;
    if (!p || ts.isExpressionStatement(p) || ts.isVoidExpression(p)) return false;
    if (ts.isAwaitExpression(p) || ts.isParenthesizedExpression(p)) return used(p);
    // `withTenant(1, () => x.catch(...))`: the arrow hands the value to the call, read if the call's is
    if (ts.isArrowFunction(p) && p.body === n && p.parent && ts.isCallExpression(p.parent)) return used(p.parent);
    return true;
  };
  /** Is `n` inside an if / else or a conditional expression (below the function it is in)? */
  const conditional = (n: ts.Node): boolean => {
    for (let p = n.parent; p && !ts.isFunctionLike(p); p = p.parent) if (ts.isIfStatement(p) || ts.isConditionalExpression(p)) return true;
    return false;
  };
  const visit = (n: ts.Node) => {
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
      const name = n.expression.name.text;
      const fn = n.arguments[0];
      if (name === 'catch' && fn && (ts.isArrowFunction(fn) || ts.isFunctionExpression(fn))) {
        const body = ts.isArrowFunction(fn) && !ts.isBlock(fn.body) ? fn.body : undefined;
        if (body && isLiteral(body) && used(n))
          problems.push(`${at(n)}: .catch(() => ${body.getText(sf)}) makes up the value the test reads`);
      }
      if (name === 'pass' && n.expression.expression.getText(sf) === 't') {
        if (ts.isReturnStatement(n.parent)) problems.push(`${at(n)}: return t.pass(...) reports an early exit as a pass: use test.skip`);
        else if (conditional(n)) problems.push(`${at(n)}: a t.pass() in one branch reports the case it skips as a pass: use test.skip`);
      }
    }
    if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.InstanceOfKeyword && n.right.getText(sf) === 'Error')
      problems.push(`${at(n)}: instanceof Error accepts any error: check the library's own error class or the message`);
    // a test: <test-ish>(title, fn) — its assertions, and helpers it hands `t` to
    if (ts.isCallExpression(n) && n.arguments.length >= 2) {
      const [title, fn] = n.arguments;
      const callee = n.expression.getText(sf);
      if (
        title &&
        fn &&
        (ts.isStringLiteralLike(title) || ts.isTemplateExpression(title)) &&
        (ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) &&
        fn.parameters[0]?.name.getText(sf) === 't'
      ) {
        const t = fn.parameters[0]?.name.getText(sf) ?? 't';
        const called = new Set<string>();
        let handsOn = false;
        const scan = (m: ts.Node) => {
          if (ts.isCallExpression(m)) {
            const e = m.expression;
            if (ts.isPropertyAccessExpression(e) && e.expression.getText(sf) === t && ASSERTIONS.has(e.name.text)) called.add(e.name.text);
            if (m.arguments.some((a) => a.getText(sf) === t)) handsOn = true;
          }
          ts.forEachChild(m, scan);
        };
        scan(fn.body);
        if (!handsOn && called.size === 1 && called.has('pass')) problems.push(`${at(n)}: the test's only assertion is t.pass()`);
        if (!handsOn && called.size === 0 && !/\.todo$/.test(callee)) problems.push(`${at(n)}: the test asserts nothing`);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return problems;
}

const dir = join(__dirname);
const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts'));

test('the checker finds each pattern it is for', (t) => {
  const cases: Array<[string, RegExp]> = [
    [`test('a', async (t) => { const n = await f().catch(() => 0); t.is(n, 0); });`, /makes up the value/],
    [`test('a', async (t) => { t.deepEqual(await f().catch(() => [1]), [1]); });`, /makes up the value/],
    [`test('a', async (t) => { if (x) return t.pass('skip'); t.is(1, 1); });`, /early exit/],
    [`test('a', async (t) => { await f(); t.pass(); });`, /only assertion is t.pass/],
    [`test.serial('a', async (t) => { const e = await f().catch((e) => e); t.true(e instanceof Error); });`, /instanceof Error/],
    [`test('a', async (t) => { await f(); });`, /asserts nothing/],
    [`citusTest('a', async (t) => { if (x) { t.is(1, 1); } else t.pass('PGlite'); });`, /in one branch/],
  ];
  for (const [source, problem] of cases) {
    const found = hygiene(source);
    t.true(found.length >= 1, `${source} → ${found.join('; ')}`);
    t.regex(found[0] ?? '', problem, source);
  }
  // what is allowed: a cleanup whose value nobody reads, an error kept to be checked, a helper given t
  for (const fine of [
    `test('a', async (t) => { try { t.is(1, 1); } finally { await s.close().catch(() => undefined); } });`,
    `test('a', async (t) => { const e = await f().catch((e: Error) => e); t.true(e instanceof MultitenantError); });`,
    `test('a', (t) => cell(t, 1));`,
  ])
    t.deepEqual(hygiene(fine), [], fine);
});

test(`no test file has a pattern that makes a test pass whatever the code does (${files.length} files)`, (t) => {
  const problems = files.flatMap((f) => hygiene(readFileSync(join(dir, f), 'utf8'), f).map((p) => `${f}:${p}`));
  t.deepEqual(problems, []);
});
