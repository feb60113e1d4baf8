// MultitenantModule on NestJS 11, Express and Fastify adapters, over real HTTP: the hostile cases of
// every host (host-suite.ts), and Nest's own: @CurrentTenant(), @WithoutTenant().
import anyTest, { type TestFn } from 'ava';
import { type HostCtx, hostSuite } from './helpers/host-suite';
import { nestHost } from './helpers/hosts/nest';
import { request } from './helpers/http';

const test = anyTest as TestFn<HostCtx>;
const hosts = [nestHost('express'), nestHost('fastify')];
hostSuite(test, hosts);

for (const host of hosts) {
  test.serial(`${host.name}: @CurrentTenant() reads the tenant; @WithoutTenant() runs the route unscoped`, async (t) => {
    await t.context.f.reset();
    const url = t.context.started[host.name]?.url as string;
    t.deepEqual((await request(`${url}/param`, { headers: { 'x-store-id': '2' } })).body, { tenant: 2 });
    t.deepEqual((await request(`${url}/param`)).body, { tenant: null });
    t.deepEqual((await request(`${url}/admin/count`, { headers: { 'x-store-id': '2' } })).body, { tenant: null, count: 5 });
  });
}
