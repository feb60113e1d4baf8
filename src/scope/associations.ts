import type { Sequelize } from 'sequelize';
import { runInFrame } from '../context';
import { TenantMismatchError } from '../errors';
import type { AnyModelStatic } from '../models';
import { stateOf } from '../state';
import { tenantIncludes } from '../tenant';
import { assertThroughValues } from './prevalidate';
import { activeScope, assertReadUnderScope, insertTenant, instanceTenantValue, narrowToInstance, type Scope } from './scope';

interface AssociationLike {
  source: AnyModelStatic & { sequelize?: Sequelize };
  target: AnyModelStatic;
  accessors: Record<string, string>;
  through?: { model: AnyModelStatic };
}
type Method = (this: AssociationLike, source: unknown, ...rest: unknown[]) => Promise<unknown>;
type AssociationClass = { prototype: Record<string, Method> };

/** The association methods that take the source instance first, per association kind. */
const METHODS: Record<string, readonly string[]> = {
  HasMany: ['get', 'count', 'has', 'set', 'add', 'remove', 'create'],
  BelongsToMany: ['get', 'count', 'has', 'set', 'add', 'remove', 'create'],
  HasOne: ['get', 'set', 'create'],
  BelongsTo: ['get', 'set', 'create'],
};
/** The methods whose second argument names target rows (instances or keys). */
const TAKES_TARGETS = new Set(['has', 'set', 'add', 'remove']);
/** The methods that may INSERT rows (of the through model for belongsToMany, else of the target). */
const MAY_INSERT: Record<string, ReadonlySet<string>> = {
  HasMany: new Set(['create']),
  BelongsToMany: new Set(['set', 'add', 'create']),
  HasOne: new Set(['set', 'create']),
  BelongsTo: new Set(['create']),
};

const patched = new WeakSet<object>();

function assertRows(scope: Scope, rows: unknown, role: string): void {
  for (const row of Array.isArray(rows) ? rows : [rows]) {
    if (!row || typeof row !== 'object' || !('dataValues' in row)) continue; // a key, or nothing
    const value = instanceTenantValue(row, scope.meta.attribute);
    if (value === undefined || value === null) {
      assertReadUnderScope(scope, row, `the ${role}`);
      continue;
    }
    if (!tenantIncludes(scope.tenant, value, scope.meta)) {
      throw new TenantMismatchError(`the ${role} ${scope.meta.name} row belongs to tenant ${String(value)}; nothing was read or written`, {
        ...scope.details,
        received: value,
      });
    }
  }
}

/** The methods that write target rows they are handed (by key: ambiguous across several tenants). */
const WRITES_TARGETS = new Set(['set', 'add', 'remove']);

/**
 * The targets and through values an association method is handed, checked before its first statement
 * under the tenant it runs with: another tenant's instance is refused; under several tenants a global
 * source cannot say whose rows its keys name, nor whose a row it would create is.
 */
function assertArguments(
  state: NonNullable<ReturnType<typeof stateOf>>,
  association: AssociationLike,
  kind: string,
  name: string,
  operation: string,
  rest: unknown[],
): void {
  if (TAKES_TARGETS.has(name)) {
    const targetScope = activeScope(state, association.target, operation, 'read');
    if (targetScope) {
      assertRows(targetScope, rest[0], 'target');
      if (targetScope.tenant.many && WRITES_TARGETS.has(name)) {
        throw new TenantMismatchError(
          `under several tenants the ${targetScope.meta.name} rows named by key could be any of them's; run ${operation} inside withTenant(oneTenant, ...); nothing was written`,
          targetScope.details,
        );
      }
    }
  }
  // belongsToMany set/add/create send several statements (links removed, added, updated): the through
  // values are checked before the first one.
  if (kind === 'BelongsToMany' && association.through && (name === 'set' || name === 'add' || name === 'create')) {
    assertThroughValues(state, association.through.model, rest[1], name === 'create' ? [] : rest[0], operation);
  }
  // A row it would create under several tenants could belong to any of them.
  if (MAY_INSERT[kind]?.has(name)) {
    const inserted = kind === 'BelongsToMany' ? association.through?.model : association.target;
    const insertScope = inserted && activeScope(state, inserted, operation, 'insert');
    if (insertScope?.tenant.many) insertTenant(insertScope);
  }
}

/**
 * Association methods (`product.getPurchases()`, `setTags`, `addPurchase`, ...) run scoped queries of
 * the target and through models already. What is left is the instances they are handed: a source
 * instance, or target instances, loaded under another tenant would join rows of two tenants by a key
 * they share. They are refused with TenantMismatchError before any SQL.
 */
export function patchAssociations(classes: Record<string, AssociationClass | undefined>): void {
  for (const [kind, methods] of Object.entries(METHODS)) {
    const cls = classes[kind];
    if (!cls || patched.has(cls)) continue;
    patched.add(cls);
    for (const name of methods) {
      const original = cls.prototype[name];
      if (typeof original !== 'function') continue;
      cls.prototype[name] = async function scopedAssociationMethod(this: AssociationLike, source: unknown, ...rest: unknown[]) {
        const state = this.source.sequelize && stateOf(this.source.sequelize);
        if (!state) return original.call(this, source, ...rest);
        const operation = this.accessors[name] ?? name;
        const sourceScope = activeScope(state, this.source, operation, 'read');
        if (sourceScope) assertRows(sourceScope, source, 'source');
        const call = () => {
          assertArguments(state, this, kind, name, operation, rest);
          return original.call(this, source, ...rest);
        };
        // Under several tenants a source row belongs to one of them: its associations — and the targets
        // it is handed, checked inside — are that tenant's.
        if (sourceScope?.tenant.many) {
          const own = narrowToInstance(sourceScope, source, 'the source');
          return runInFrame({ tenant: own.tenant, bypass: false }, call);
        }
        return call();
      };
    }
  }
}
