import type { TenantMeta } from '../models';
import { canonical, type Tenant, tenantIncludes } from '../tenant';
import type { Graph, ValueSource } from './analysis';

/**
 * The first tenant-table reference that the current tenant does not constrain, or undefined. `cursorOk`
 * says whether a cursor was declared under the current tenant (`WHERE CURRENT OF c`); none is, by default.
 * `reading`: the tenant column whose type every compared value is read by (an integer column reads '01'
 * as 1, a UUID column ignores letter case); without it, values must be one of the tenant's keys as written.
 */
export function firstUnconstrained(
  graph: Graph,
  tenant: Tenant | undefined,
  bind: readonly unknown[] | undefined,
  cursorOk: (name: string) => boolean = () => false,
  reading?: TenantMeta,
): string | undefined {
  const marked = new Uint8Array(graph.nodes);
  if (tenant) {
    const inTenant = reading
      ? (v: unknown) => tenantIncludes(tenant, v, reading)
      : (v: unknown) => {
          const key = canonical(v);
          return key !== undefined && tenant.keys.has(key);
        };
    const ok = (source: ValueSource): boolean => {
      if ('c' in source) return inTenant(source.c);
      if ('p' in source) return inTenant(bind?.[source.p - 1]);
      if ('cursor' in source) return cursorOk(source.cursor);
      const list = bind?.[source.any - 1];
      return Array.isArray(list) && list.length > 0 && list.every(inTenant);
    };
    const queue: number[] = [];
    for (const d of graph.direct) {
      if (!marked[d.node] && d.values.every(ok)) {
        marked[d.node] = 1;
        queue.push(d.node);
      }
    }
    const next = new Map<number, number[]>();
    for (const [from, to] of graph.edges) next.set(from, [...(next.get(from) ?? []), to]);
    while (queue.length > 0) {
      const n = queue.pop() as number;
      for (const m of next.get(n) ?? []) {
        if (!marked[m]) {
          marked[m] = 1;
          queue.push(m);
        }
      }
    }
  }
  // With no tenant (strict mode), rows of the tenant table itself may be created, as the ORM allows.
  return graph.required.find((r) => !marked[r.node] && !(r.ownRow && !tenant))?.table;
}
