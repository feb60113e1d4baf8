// multitenant() checks every Sequelize internal it wraps before it patches anything: a release that
// renamed one makes the install fail with a MultitenantError naming it, and nothing is half-installed.
import test from 'ava';
import { Sequelize } from 'sequelize';
import { MultitenantError, multitenant } from '../src/index';
import { missingInternals } from '../src/verify/internals';

const fresh = () => new Sequelize('postgres://u@127.0.0.1:1/none', { logging: false });

test('a complete Sequelize has every internal the scoping wraps', (t) => {
  t.deepEqual(missingInternals(fresh()), []);
});

test('an instance-level internal that is gone (renamed in a release) fails the install, naming it; nothing is patched', (t) => {
  const cases: Array<[string, (s: Sequelize) => void]> = [
    ['QueryGenerator#generateJoin', (s) => Object.assign(s.getQueryInterface().queryGenerator as object, { generateJoin: undefined })],
    ['QueryInterface#bulkUpdate', (s) => Object.assign(s.getQueryInterface(), { bulkUpdate: undefined })],
    ['QueryInterface#rawSelect', (s) => Object.assign(s.getQueryInterface(), { rawSelect: 'renamed' })],
    [
      'QueryGenerator#_generateSubQueryFilter',
      (s) => Object.assign(s.getQueryInterface().queryGenerator as object, { _generateSubQueryFilter: undefined }),
    ],
  ];
  for (const [internal, remove] of cases) {
    const s = fresh();
    remove(s);
    const qi = s.getQueryInterface() as unknown as Record<string, unknown>;
    const select = qi.select;
    const err = t.throws(() => multitenant(s), { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', new RegExp(`lacks an internal the tenant scoping wraps: ${internal.replace(/[#.]/g, '\\$&')}`));
    t.regex(err?.message ?? '', new RegExp(`this Sequelize \\(${(Sequelize as unknown as { version: string }).version}\\)`));
    t.is(qi.select, select, 'nothing half-installed');
    // a second call still refuses (the instance was never marked as installed)
    t.throws(() => multitenant(s), { instanceOf: MultitenantError });
  }
});

test('a class-level internal that is gone fails the install too, listing every missing one', (t) => {
  const s = fresh();
  const Model = (s.constructor as unknown as { Model: Record<string, unknown> & { prototype: Record<string, unknown> } }).Model;
  const HasMany = (s.constructor as unknown as { HasMany: { prototype: Record<string, unknown> } }).HasMany;
  const saved = { findOrCreate: Model.findOrCreate, save: Model.prototype.save, add: HasMany.prototype.add };
  try {
    Model.findOrCreate = undefined;
    Model.prototype.save = undefined;
    HasMany.prototype.add = undefined;
    const err = t.throws(() => multitenant(s), { instanceOf: MultitenantError });
    t.regex(err?.message ?? '', /lacks internals the tenant scoping wraps: Model#save, Model\.findOrCreate, HasMany#add\./);
  } finally {
    Model.findOrCreate = saved.findOrCreate;
    Model.prototype.save = saved.save;
    HasMany.prototype.add = saved.add;
  }
  t.deepEqual(missingInternals(s), []);
});
