// The built package (npm test builds it first), used the way applications use it: require, import,
// and TypeScript with the Sequelize augmentation.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';

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
