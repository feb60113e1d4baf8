// A host refuses a request's tenant that fits no tenant column of the application before the route runs
// (hosts/resolve.ts): the types it checks against are the application's tenant columns only — not the
// install canary's throwaway models (an INTEGER column), which would let '1' pass for an app keyed by UUID.
// One process per test file: the models below are the only ones this process defines.
import test from 'ava';
import { DataTypes, Sequelize } from 'sequelize';
import { multitenant } from '../src/index';
import { knownTenantColumnTypes } from '../src/models';
import { fitsSomeTenantColumn, normalizeTenant } from '../src/tenant';

test('the tenant column types a host checks are the application’s: a UUID app refuses an integer tenant', (t) => {
  const sequelize = new Sequelize('postgres://postgres@127.0.0.1:1/none', { logging: false });
  multitenant(sequelize, { notice: false }); // runs the install canary (its models have INTEGER tenant columns)
  const uuid = { type: DataTypes.UUID, primaryKey: true };
  sequelize.define('Org', { id: uuid }, { tenantKey: 'id' });
  sequelize.define('Doc', { id: { type: DataTypes.INTEGER, primaryKey: true }, org_id: uuid }, { tenantKey: 'org_id' });
  t.deepEqual([...knownTenantColumnTypes()], ['UUID']);
  t.false(fitsSomeTenantColumn(normalizeTenant('1', {})));
  t.true(fitsSomeTenantColumn(normalizeTenant('6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c', {})));
});
