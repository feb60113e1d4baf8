// What Citus would refuse part-way through a sync, found before the first DDL statement: a tenant
// model's keys without the tenant column, tenant columns that cannot be colocated, foreign keys Citus
// refuses between distributed, reference and local tables.
import type { Sequelize } from 'sequelize';
import { MultitenantError } from '../errors';
import type { AnyModelStatic } from '../models';
import { isReference, metaOf, models, type Raw as RawAttributes, raw, tenantTableOf } from '../schema/graph';
import { keyProblems } from '../schema/keys';
import { bare, type TableName, tableKey } from '../schema/sql';

const INTEGERS = new Set(['INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'MEDIUMINT']);

type Raw = Record<string, RawAttributes[string] & { references?: { model?: TableName | { getTableName(): TableName } } }>;

/** What Citus would refuse part-way through a sync, for every model: MultitenantErrors before any DDL. */
export function citusProblems(sequelize: Sequelize, only?: AnyModelStatic): MultitenantError[] {
  const problems: MultitenantError[] = [];
  const all = models(sequelize);
  const byTable = new Map(all.map((m) => [tableKey(m.getTableName() as TableName), m]));
  for (const model of only ? [only] : all) {
    const meta = metaOf(model);
    const refuse = (message: string) =>
      problems.push(new MultitenantError(`${message}; nothing was created`, { model: model.name, operation: 'sync' }));
    if (!meta) {
      // a reference table cannot hold a foreign key to a distributed table (a local global table can)
      if (!isReference(model)) continue;
      for (const [name, def] of Object.entries(raw(model) as Raw)) {
        const ref = def?.references?.model;
        if (!ref) continue;
        const target = byTable.get(tableKey(typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName)));
        if (target && metaOf(target))
          refuse(
            `${model.name}.${name} references ${target.name}, a distributed tenant table, from a reference table: Citus refuses foreign keys from reference tables to distributed tables. Declare the association with constraints: false, or drop referenceTable`,
          );
      }
      continue;
    }
    for (const p of keyProblems(model)) if (p.kind !== 'autoIncrement') refuse(p.message);
    // colocation: Citus colocates tables only when their distribution columns have the same type
    const tenantTable = tenantTableOf(sequelize, model, meta);
    const tenantType = tenantTable && metaOf(tenantTable.model)?.typeKey;
    if (
      tenantTable &&
      tenantType !== meta.typeKey &&
      (tenantTable.declared || (INTEGERS.has(tenantType ?? '') && INTEGERS.has(meta.typeKey)))
    ) {
      const parent = bare(tenantTable.model.getTableName() as TableName);
      refuse(
        `the tenant column ${bare(model.getTableName() as TableName)}.${meta.column} is ${meta.typeKey} but ${parent}'s key is ${tenantType}: Citus colocates tables only when the distribution columns have the same type. Declare both ${INTEGERS.has(meta.typeKey) && INTEGERS.has(tenantType ?? '') ? 'BIGINT' : 'with one type'}`,
      );
    }
    // a key from a distributed table to a table that is neither distributed nor a reference table
    for (const [name, def] of Object.entries(raw(model) as Raw)) {
      const ref = def?.references?.model;
      if (!ref) continue;
      const table = bare(typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName));
      const target = byTable.get(tableKey(typeof ref === 'object' && 'getTableName' in ref ? ref.getTableName() : (ref as TableName)));
      if (!target || metaOf(target) || isReference(target)) continue;
      refuse(
        `${model.name}.${name} references ${table} (${target.name}), a global model that is not a reference table: Citus refuses a foreign key from a distributed table to a local one. Give ${target.name} referenceTable: true, or declare the association with constraints: false`,
      );
    }
  }
  return problems;
}
