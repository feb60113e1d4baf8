// sequelize-typescript: `@Table({ tenantKey: 'store_id' })` type-checks with no cast (tsc on the
// fixture with its decorator settings) and scopes (the fixture run against a fresh database).
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { createTestDatabase } from './helpers/db';

const run = promisify(execFile);
const dir = join(__dirname, 'fixtures', 'sequelize-typescript');

for (const compiler of ['typescript', 'typescript7']) {
  test(`@Table({ tenantKey }) type-checks with no cast (${compiler})`, async (t) => {
    // (TypeScript 7's package exports only its package.json: the bin is found beside it)
    const tsc = join(dirname(require.resolve(`${compiler}/package.json`)), 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')]).catch((e: { stdout: string }) => e);
    t.is(result.stdout, '');
  });
}

test('sequelize-typescript models are scoped: reads, includes, counts and creates', async (t) => {
  const db = await createTestDatabase();
  try {
    const tsx = require.resolve('tsx/cli');
    const { stdout } = await run(process.execPath, [tsx, '--tsconfig', join(dir, 'tsconfig.json'), join(dir, 'app.ts')], {
      env: { ...process.env, DATABASE_URL: db.url },
    });
    t.deepEqual(JSON.parse(stdout), {
      seen: { products: ['p1-2', 'p2-2'], withStore: [['b', 2]], created: '2', count: 3 },
      all: 5,
    });
  } finally {
    await db.drop();
  }
});
