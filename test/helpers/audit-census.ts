// Loaded by ava in every test process (package.json "ava.require"). When MULTITENANT_AUDIT_CENSUS names a
// file, it counts the statements this test file sent through instances of the library — and how many of
// them the auditor saw (its mode not 'off') — and appends one JSON line per test file to it at exit. CI's
// auditor run reads it to say how much of the suite really ran under the auditor (.ci/census.mjs).
import { appendFileSync } from 'node:fs';
import { stateOf } from '../../src/state';

const target = process.env.MULTITENANT_AUDIT_CENSUS;
if (target) {
  const Query = require('sequelize/lib/dialects/postgres/query') as { prototype: { run(...args: unknown[]): unknown } };
  const run = Query.prototype.run;
  const counts = { statements: 0, audited: 0, instances: new WeakSet<object>(), instanceCount: 0, unaudited: 0 };
  const unauditedInstances = new WeakSet<object>();
  Query.prototype.run = function census(this: { sequelize: object }, ...args: unknown[]) {
    const state = stateOf(this.sequelize as never);
    if (state) {
      counts.statements += 1;
      if (state.options.audit !== 'off') counts.audited += 1;
      if (!counts.instances.has(this.sequelize)) {
        counts.instances.add(this.sequelize);
        counts.instanceCount += 1;
      }
      if (state.options.audit === 'off' && !unauditedInstances.has(this.sequelize)) {
        unauditedInstances.add(this.sequelize);
        counts.unaudited += 1;
      }
    }
    return run.apply(this, args);
  };
  process.on('exit', () => {
    const file = Object.keys(require.cache).find((k) => /[\\/]test[\\/][^\\/]+\.test\.ts$/.test(k));
    // named as ava prefixes test titles: the path under test/ without a test- prefix or a .test suffix
    const name = file
      ? file
          .replace(/^.*[\\/]test[\\/]/, '')
          .replace(/\.test\.ts$/, '')
          .replace(/^test[-_]/, '')
      : 'unknown';
    const { statements, audited, instanceCount, unaudited } = counts;
    appendFileSync(
      target,
      `${JSON.stringify({ file: name, statements, audited, instances: instanceCount, unauditedInstances: unaudited })}\n`,
    );
  });
}
