// A short seeded run of the isolation fuzzer (test/helpers/fuzz.ts) as part of npm test.
// Long runs: npm run fuzz -- --runs 500 [--seed N]
import anyTest, { type TestFn } from 'ava';
import { createFixture, type Fixture } from './helpers/fixture';
import { fuzz } from './helpers/fuzz';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture();
});
test.after.always(async (t) => t.context?.close());

test.serial('isolation fuzzer: random operations across three tenants sharing keys match the model, 0 violations', async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? 20261127);
  const report = await fuzz(t.context, { runs: Number(process.env.FUZZ_RUNS ?? 8), seed });
  t.log(`seed ${report.seed}: ${report.runs} runs, ${report.operations} operations checked`);
  t.true(report.operations > 0);
});
