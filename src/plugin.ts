import type { Sequelize } from 'sequelize';
import { assertParserInstalled, installAuditor } from './audit/auditor';
import { alterStatements } from './citus/alter';
import { distributeModel, distributionProblem, isDistributed } from './citus/distribution';
import { citusProblems } from './citus/preflight';
import { type ClsNamespace, configureNamespace, watchSequelizeClass } from './context';
import { MultitenantError } from './errors';
import { type AnyModelStatic, checkTenantKeyNamed, unnamedTenantKey } from './models';
import { notify } from './notice';
import { checkOptions, type OptionSpec } from './options';
import { installRls } from './rls/install';
import { patchAssociationFactories } from './schema/actions';
import { models } from './schema/graph';
import { checkTenantModel } from './schema/keys';
import type { CitusSteps } from './schema/steps';
import { patchAlter, patchCreateTable, patchModelSync } from './schema/sync';
import { giveTenantColumns } from './schema/through';
import { patchSequelizeSync } from './schema/validate';
import { patchAssociations } from './scope/associations';
import { addTenantHooks } from './scope/hooks';
import { type GeneratorInternals, patchIncludes } from './scope/includes';
import { patchModelMethods } from './scope/methods';
import { patchReads } from './scope/reads';
import { patchWrites, type QueryInterfaceInternals } from './scope/writes';
import { type AuditMode, isInstalled, type MultitenantOptions, type PluginState, registerState, stateOf } from './state';
import { wrapChain } from './statics';
import { assertCanary } from './verify/canary';
import { assertInternals } from './verify/internals';
import { installTenantLogging } from './visibility';

/** The Citus steps of the sync paths (citus/), handed to the schema layer (schema/), which does not import them. */
const citusSteps: CitusSteps = {
  problems: citusProblems,
  distribute: distributeModel,
  isDistributed,
  distributionProblem,
  alterStatements,
};

const AUDIT_MODES: readonly string[] = ['off', 'warn', 'throw'];
/** What `multitenant()` takes (docs/reference.md "Options"). */
export const MULTITENANT_OPTIONS: OptionSpec = {
  strict: 'boolean',
  namespace: 'object',
  writeOnly: 'boolean',
  notice: 'notice',
  audit: { oneOf: AUDIT_MODES },
  rls: 'boolean',
  logTenant: 'boolean',
  sqlComment: 'boolean',
};

function resolveOptions(sequelize: Sequelize, options: MultitenantOptions): PluginState['options'] {
  checkOptions('multitenant', options, MULTITENANT_OPTIONS, 'nothing was installed');
  const audit = options.audit ?? auditFromEnvironment();
  if (audit !== 'off') assertParserInstalled();
  if (options.rls && sequelize.getDialect() !== 'postgres') {
    throw new MultitenantError(`option rls needs PostgreSQL (dialect ${sequelize.getDialect()}); nothing was installed`, {
      operation: 'multitenant',
    });
  }
  if (options.rls) assertDriverReportsTransactions(sequelize);
  if (options.strict && options.writeOnly) {
    throw new MultitenantError('strict and writeOnly exclude each other: writeOnly adds no filters', { operation: 'multitenant' });
  }
  return { ...options, audit, strict: options.strict ?? false, writeOnly: options.writeOnly ?? false };
}

/** The environment variable that sets the auditor's mode of every instance whose options leave `audit` out. */
const AUDIT_VARIABLE = 'SEQUELIZE_MULTITENANT_AUDIT';

/** `audit` left out: the environment's choice (unset or empty: off); anything else than a mode is refused. */
function auditFromEnvironment(): AuditMode {
  const value = process.env[AUDIT_VARIABLE]?.trim();
  if (value === undefined || value === '') return 'off';
  if (!AUDIT_MODES.includes(value)) {
    throw new MultitenantError(
      `environment variable ${AUDIT_VARIABLE} must be 'off', 'warn' or 'throw', got '${value}'; nothing was installed`,
      { operation: 'multitenant' },
    );
  }
  return value as AuditMode;
}

/**
 * What a connection holds is tracked with the transaction status the server reports (ReadyForQuery):
 * the pg driver exposes it from 8.21 (`client.getTransactionStatus()`), the native binding not at all.
 */
function assertDriverReportsTransactions(sequelize: Sequelize): void {
  const cm = (sequelize as unknown as { connectionManager?: { lib?: { Client?: { prototype?: Record<string, unknown> } } } })
    .connectionManager;
  const native = (sequelize as unknown as { options?: { native?: boolean } }).options?.native === true;
  if (!native && typeof cm?.lib?.Client?.prototype?.getTransactionStatus === 'function') return;
  throw new MultitenantError(
    `option rls needs the pg driver 8.21 or later, which reports each connection's transaction status (client.getTransactionStatus)${native ? ', and not the native binding (native: true)' : ''}: install pg@^8.21; nothing was installed`,
    { operation: 'multitenant' },
  );
}

/** A tenantKey that names nothing yet is said once, at the end of the tick: associations defined right after the model may add it. */
function sayUnnamedLater(sequelize: Sequelize, model: AnyModelStatic): void {
  process.nextTick(() => {
    const message = unnamedTenantKey(model);
    if (message) notify(sequelize, message);
  });
}

const initPatched = new WeakSet<object>();

/**
 * `Model.init` (which `sequelize.define` and sequelize-typescript call) refuses a misspelt tenantKey
 * when it returns: the model is removed again and the error thrown to the caller. (Sequelize runs its
 * `afterDefine` hooks in a promise nobody awaits: an error there would be an unhandled rejection.)
 */
function patchModelInit(Model: { init(...args: unknown[]): unknown }): void {
  if (initPatched.has(Model)) return;
  initPatched.add(Model);
  const init = Model.init;
  Model.init = function checkedInit(this: AnyModelStatic & { sequelize?: Sequelize }, ...args: unknown[]) {
    const model = init.apply(this, args) as AnyModelStatic;
    const sequelize = this.sequelize;
    if (!sequelize || !isInstalled(sequelize)) return model;
    let named: 'ok' | 'pending';
    try {
      named = checkTenantKeyNamed(this);
    } catch (err) {
      (sequelize as unknown as { modelManager: { removeModel(m: unknown): void } }).modelManager.removeModel(this);
      throw err;
    }
    if (named === 'pending') sayUnnamedLater(sequelize, this);
    return model;
  };
}

/** A tenant model, defined: its keys are checked for Citus (said once) and the library's hooks go first. */
function onDefine(model: AnyModelStatic, state: PluginState, base: object): void {
  // (sequelize-typescript's models reach the base Model's static methods through copies of their own)
  wrapChain(model, base);
  checkTenantModel(model, 'define');
  addTenantHooks(model, state);
}

/**
 * Installs tenant scoping on one Sequelize instance: every model with a `tenantKey` option, defined
 * before or after this call, is scoped to the current tenant. Idempotent: a second call installs
 * nothing twice; options given again replace the previous ones (a call without options keeps them).
 * @example
 * const sequelize = new Sequelize(process.env.DATABASE_URL);
 * multitenant(sequelize, { strict: true });
 * Product.init(attributes, { sequelize, tenantKey: 'store_id' });
 */
export function multitenant(sequelize: Sequelize, options?: MultitenantOptions): Sequelize {
  const ctor = sequelize?.constructor as unknown as { Model?: unknown; _cls?: ClsNamespace | null } | undefined;
  if (!ctor || typeof sequelize.getQueryInterface !== 'function' || !ctor.Model) {
    throw new MultitenantError('multitenant() takes a Sequelize instance', { operation: 'multitenant' });
  }
  const existing = stateOf(sequelize);
  if (existing && options === undefined) return sequelize;
  const resolved = resolveOptions(sequelize, options ?? {});
  if (sequelize.getDialect() !== 'postgres') {
    throw new MultitenantError(
      `multitenant() needs PostgreSQL (or Citus): this Sequelize instance's dialect is ${sequelize.getDialect()}; nothing was installed`,
      { operation: 'multitenant' },
    );
  }
  // Every Sequelize internal wrapped below is checked first: a missing one fails the install whole.
  if (!existing) assertInternals(sequelize);
  // So is a misspelt tenantKey of a model defined before this call.
  const unnamed = existing ? [] : models(sequelize).filter((model) => checkTenantKeyNamed(model) === 'pending');
  configureNamespace(resolved.namespace);
  watchSequelizeClass(ctor);
  const rlsOn = (s: Sequelize) => stateOf(s)?.options.rls === true;
  // (installed the first time it is asked for; it reads the option on each line, so it can be turned off again)
  if (resolved.logTenant) installTenantLogging(sequelize, () => stateOf(sequelize)?.options.logTenant === true);
  if (existing) {
    existing.options = resolved;
    if (resolved.rls) installRls(sequelize, ctor.Model as Parameters<typeof installRls>[1], rlsOn);
    // Switching writeOnly off makes reads and filters scoped: prove it again for the new mode.
    existing.canary = assertCanary(sequelize, { filters: !resolved.writeOnly });
    return sequelize;
  }
  const state: PluginState = { options: resolved };
  const qi = sequelize.getQueryInterface() as unknown as QueryInterfaceInternals;
  patchReads(qi, state);
  patchWrites(qi, state);
  patchIncludes(qi.queryGenerator as unknown as GeneratorInternals, state);
  patchModelMethods(ctor.Model as Parameters<typeof patchModelMethods>[0]);
  patchAssociations(ctor as unknown as Parameters<typeof patchAssociations>[0]);
  patchAssociationFactories(ctor.Model as Record<string, unknown>, isInstalled);
  installAuditor((sequelize as unknown as { dialect: { Query: Parameters<typeof installAuditor>[0] } }).dialect.Query, stateOf);
  patchModelSync(ctor.Model as Parameters<typeof patchModelSync>[0], isInstalled, citusSteps);
  patchSequelizeSync(sequelize, () => isInstalled(sequelize), citusSteps);
  patchAlter(qi as unknown as Parameters<typeof patchAlter>[0], () => isInstalled(sequelize), citusSteps);
  patchCreateTable(qi as unknown as Parameters<typeof patchCreateTable>[0], () => isInstalled(sequelize), citusSteps);
  registerState(sequelize, state);
  if (resolved.rls) installRls(sequelize, ctor.Model as Parameters<typeof installRls>[1], rlsOn);
  // Prove the wrappers are on the paths Sequelize takes: build (never send) representative SQL and check it.
  state.canary = assertCanary(sequelize, { filters: !resolved.writeOnly });
  // Keys Citus would reject are said once per model: now for the models already defined, then as each is defined.
  giveTenantColumns(sequelize);
  // (read again: the canary's throwaway models were added and removed meanwhile)
  for (const model of models(sequelize)) onDefine(model, state, ctor.Model as object);
  for (const model of unnamed) sayUnnamedLater(sequelize, model);
  patchModelInit(ctor.Model as Parameters<typeof patchModelInit>[0]);
  sequelize.addHook('afterDefine', (model) => {
    if (isInstalled(sequelize)) onDefine(model as unknown as AnyModelStatic, state, ctor.Model as object);
  });
  return sequelize;
}
