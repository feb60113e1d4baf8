// Long runs of the isolation fuzzer: npm run fuzz -- --runs 500 [--seed 42] [--length 40]
// Uses the same database choice as the tests (DATABASE_URL, the local server, else embedded PGlite).
import { parseArgs } from 'node:util';
import { createFixture } from '../test/helpers/fixture';
import { fuzz } from '../test/helpers/fuzz';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '200' }, seed: { type: 'string' }, length: { type: 'string', default: '40' } },
});
const seed = values.seed ? Number(values.seed) : Date.now() % 2 ** 31;
async function main(): Promise<void> {
  const started = Date.now();
  const fixture = await createFixture();
  try {
    const report = await fuzz(fixture, { runs: Number(values.runs), seed, length: Number(values.length) });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`fuzz: seed ${report.seed}, ${report.runs} runs, ${report.operations} operations, 0 violations (${seconds} s)`);
  } catch (err) {
    console.error(`fuzz: seed ${seed}: VIOLATION\n${(err as Error).message}`);
    process.exitCode = 1;
  } finally {
    await fixture.close();
  }
}
main();
