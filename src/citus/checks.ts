import type { Sequelize } from 'sequelize';
import { type AnyModelStatic, tenantMeta } from '../models';
import { notify } from '../notice';
import { throughUniqueKeyNames } from './schema';

interface Internals {
  name: string;
  primaryKeyAttributes: string[];
  rawAttributes: Record<
    string,
    { field?: string; unique?: unknown; autoIncrement?: boolean; primaryKey?: boolean; type?: { key?: string } }
  >;
  uniqueKeys: Record<string, { fields: string[] }>;
  _indexes?: Array<{ unique?: boolean; fields?: unknown[]; name?: string }>;
  sequelize?: Sequelize;
}

const checked = new WeakSet<object>();

/**
 * What Citus will refuse or mishandle in a tenant model's keys, said once per model: a primary key or
 * unique key without the tenant column, an INTEGER auto-increment key. Returns the messages.
 */
export function checkTenantModel(model: AnyModelStatic): string[] {
  if (checked.has(model)) return [];
  let meta: ReturnType<typeof tenantMeta>;
  try {
    meta = tenantMeta(model);
  } catch {
    return []; // a tenantKey that names nothing yet: reported when the model is used
  }
  if (!meta) return [];
  checked.add(model);
  const m = model as unknown as Internals;
  const column = (attr: string) => m.rawAttributes[attr]?.field ?? attr;
  const messages: string[] = [];
  const pk = m.primaryKeyAttributes.map(column);
  if (!meta.isTenantTable && !pk.includes(meta.column)) {
    messages.push(
      `${m.name}: primary key (${pk.join(', ')}) does not include the tenant column ${meta.column}; Citus refuses to distribute it and tenants cannot share ids. Use a composite key (${[meta.column, ...pk].join(', ')}).`,
    );
  }
  const fixed = new Set(throughUniqueKeyNames(model));
  const uniques: Array<[string, string[]]> = Object.entries(m.uniqueKeys ?? {})
    .filter(([name]) => !fixed.has(name))
    .map(([name, u]) => [name, u.fields.map(String)]);
  for (const index of m._indexes ?? []) {
    if (index.unique)
      uniques.push([
        index.name ?? 'index',
        (index.fields ?? []).map((f) => (typeof f === 'string' ? f : String((f as { name?: string }).name))),
      ]);
  }
  for (const [, fields] of uniques) {
    if (!meta.isTenantTable && !fields.includes(meta.column)) {
      messages.push(
        `${m.name}: unique key (${fields.join(', ')}) does not include the tenant column ${meta.column}; Citus rejects it on a distributed table, and it makes one tenant's values block another's. Make it (${[meta.column, ...fields].join(', ')}).`,
      );
    }
  }
  for (const attr of m.primaryKeyAttributes) {
    const def = m.rawAttributes[attr];
    if (def?.autoIncrement && def.type?.key === 'INTEGER') {
      messages.push(
        `${m.name}.${attr} is an INTEGER auto-increment key: use BIGINT (on Citus, int sequences work through the coordinator only).`,
      );
    }
  }
  for (const message of messages) notify(m.sequelize, message);
  return messages;
}
