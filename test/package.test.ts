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
    for (const config of ['tsconfig.json', 'tsconfig.koa.json']) {
      const result = await run(process.execPath, [tsc, '-p', join(dir, config)]).catch((e: { stdout: string }) => e);
      t.is(result.stdout, '', config);
    }
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

// Subpaths under every module resolution an application may use: node10 (the default of "module":
// "commonjs", common in NestJS apps) finds them through typesVersions, the others through exports.
const SUBPATH_APP = `import { multitenant, withTenant } from 'sequelize-multitenant';
import { fastifyTenant } from 'sequelize-multitenant/fastify';
import { koaTenant } from 'sequelize-multitenant/koa';
import { MultitenantModule, RequireTenant } from 'sequelize-multitenant/nestjs';
import { tenantQueue } from 'sequelize-multitenant/bullmq';
export const used = [multitenant, withTenant, fastifyTenant, koaTenant, MultitenantModule, RequireTenant, tenantQueue];
`;
const MAIN_APP = `import { multitenant, tenantMiddleware, withTenant } from 'sequelize-multitenant';
export const used = [multitenant, tenantMiddleware, withTenant];
`;
const RESOLUTIONS: Array<[string, string, string[], 'checked' | 'skipped']> = [
  ['node10', 'commonjs', ['typescript'], 'skipped'], // TypeScript 7 no longer has node10
  ['node16', 'node16', ['typescript', 'typescript7'], 'skipped'],
  ['nodenext', 'nodenext', ['typescript', 'typescript7'], 'skipped'],
  ['bundler', 'esnext', ['typescript', 'typescript7'], 'skipped'],
  // every declaration checked, with no `types` listed — TypeScript 7 then loads no @types at all: the
  // library's declarations that use node:http and node:async_hooks reference @types/node themselves
  ['node16', 'node16', ['typescript7'], 'checked'],
  ['nodenext', 'nodenext', ['typescript7'], 'checked'],
];
for (const [resolution, module, compilers, libCheck] of RESOLUTIONS) {
  for (const compiler of compilers) {
    const title = libCheck === 'checked' ? ', its declarations checked, no types listed' : '';
    test(`subpaths and their types resolve under moduleResolution ${resolution}${title} (${compiler})`, async (t) => {
      const { mkdtemp, mkdir, symlink, writeFile, rm } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      // checked: inside this checkout, so that every package and @types resolves from its node_modules as
      // from an application's (no paths, no typeRoots)
      const base = libCheck === 'checked' ? join(__dirname, '..', '.docs-check') : tmpdir();
      await mkdir(base, { recursive: true });
      const app = await mkdtemp(join(base, `smt-${resolution}-`));
      try {
        // the package as an application has it: node_modules/sequelize-multitenant (this checkout, built)
        await mkdir(join(app, 'node_modules'));
        await symlink(join(__dirname, '..'), join(app, 'node_modules', 'sequelize-multitenant'), 'dir');
        // checked: the main entry alone (the subpaths' peers, fastify's types, pull in @types/node themselves)
        await writeFile(join(app, 'app.ts'), libCheck === 'checked' ? MAIN_APP : SUBPATH_APP);
        await writeFile(
          join(app, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              target: 'ES2022',
              module,
              moduleResolution: resolution,
              strict: true,
              noEmit: true,
              ...(libCheck === 'checked'
                ? { skipLibCheck: false, esModuleInterop: true }
                : {
                    skipLibCheck: true,
                    types: [],
                    // the peers (sequelize, fastify, @nestjs/*...) from this checkout's node_modules
                    typeRoots: [join(__dirname, '..', 'node_modules', '@types')],
                    paths: { '*': [join(__dirname, '..', 'node_modules', '*')] },
                  }),
            },
            files: ['app.ts'],
          }),
        );
        const tsc = join(dirname(require.resolve(`${compiler}/package.json`)), 'bin', 'tsc');
        const result = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')]).catch((e: { stdout: string }) => e);
        t.is(result.stdout, '');
      } finally {
        await rm(app, { recursive: true, force: true });
      }
    });
  }
}
