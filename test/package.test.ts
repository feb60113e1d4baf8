// The built package (npm test builds it first), used the way applications use it: require, import,
// and TypeScript with the Sequelize augmentation.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import ts from 'typescript';

const run = promisify(execFile);
const dir = join(__dirname, 'fixtures', 'consumer');

test('require() from a CommonJS application', async (t) => {
  const { stdout } = await run(process.execPath, [join(dir, 'consumer.cjs')]);
  t.is(stdout, 'cjs ok\n');
});

test('import from an ES module application, sharing one module state with require', async (t) => {
  const { stdout } = await run(process.execPath, [join(dir, 'consumer.mjs')]);
  t.is(stdout, 'esm ok\n');
});

// TypeScript 5 (the JS compiler) and TypeScript 7 (the native one; devDependency typescript7)
for (const compiler of ['typescript', 'typescript7']) {
  test(`TypeScript applications (CommonJS and ESM) compile against the shipped .d.ts, tenantKey with no cast (${compiler})`, async (t) => {
    // (TypeScript 7's package exports only its package.json: the bin is found beside it)
    const tsc = join(dirname(require.resolve(`${compiler}/package.json`)), 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')]).catch((e: { stdout: string }) => e);
    t.is(result.stdout, '');
  });
}

test('no export of the package has `any` in its type (main entry and subpaths, read from the shipped .d.ts)', (t) => {
  const dist = join(__dirname, '..', 'dist');
  const entries = ['index.d.ts', 'hosts/fastify.d.ts', 'hosts/koa.d.ts', 'hosts/nestjs.d.ts', 'hosts/bullmq.d.ts'].map((f) =>
    join(dist, f),
  );
  const program = ts.createProgram(entries, {
    strict: true,
    skipLibCheck: true,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
  });
  const checker = program.getTypeChecker();
  const show = (type: ts.Type, at: ts.Node) =>
    checker.typeToString(type, at, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias);
  const found: string[] = [];
  let exports = 0;
  for (const entry of entries) {
    const file = program.getSourceFile(entry);
    const moduleSymbol = file && checker.getSymbolAtLocation(file);
    if (!file || !moduleSymbol) return t.fail(`no module ${entry}`);
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      exports++;
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const texts: string[] = [];
      if (symbol.flags & ts.SymbolFlags.Value) texts.push(show(checker.getTypeOfSymbolAtLocation(symbol, file), file));
      if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Class)) {
        const type = checker.getDeclaredTypeOfSymbol(symbol);
        texts.push(show(type, file));
        // the members of interfaces and classes (not those of a primitive a type alias names)
        if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class))
          for (const property of checker.getPropertiesOfType(type))
            texts.push(show(checker.getTypeOfSymbolAtLocation(property, file), file));
      }
      for (const text of texts) if (/\bany\b/.test(text)) found.push(`${exported.name}: ${text}`);
    }
  }
  t.true(exports > 50, `${exports} exports read`);
  t.deepEqual(found, []);
});
