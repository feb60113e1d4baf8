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

test.serial('a route mark wins over its controller mark; both on one target are refused', async (t) => {
  const { Controller, Get, Module } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const { MultitenantModule, RequireTenant, WithoutTenant } = await import('../src/hosts/nestjs');
  const { getCurrentTenantId } = await import('../src/index');
  const { f } = t.context;
  await f.reset();
  class Admin {
    async orders() {
      return { tenant: getCurrentTenantId() ?? null, count: await f.Product.count() };
    }
    async open() {
      return { count: await f.Product.count() };
    }
    both() {
      return {};
    }
  }
  const method = (name: keyof Admin) =>
    [Admin.prototype, name, Object.getOwnPropertyDescriptor(Admin.prototype, name) as PropertyDescriptor] as const;
  Get('orders')(...method('orders'));
  RequireTenant()(...method('orders'));
  Get('open')(...method('open'));
  Get('both')(...method('both'));
  RequireTenant()(...method('both'));
  WithoutTenant()(...method('both'));
  WithoutTenant()(Admin);
  Controller('admin2')(Admin);
  class AppModule {}
  Module({
    imports: [MultitenantModule.forRoot({ resolveTenant: (req: { headers: Record<string, string> }) => req.headers['x-store-id'] })],
    controllers: [Admin],
  })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  try {
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const refused = await request(`${url}/admin2/orders`);
    t.is(refused.status, 401, 'no tenant: @RequireTenant on the route wins over @WithoutTenant on the controller');
    t.regex(refused.text, /MissingTenantError|resolved to no tenant/);
    t.deepEqual((await request(`${url}/admin2/orders`, { headers: { 'x-store-id': '2' } })).body, { tenant: '2', count: 3 });
    t.deepEqual(
      (await request(`${url}/admin2/open`, { headers: { 'x-store-id': '2' } })).body,
      { count: 5 },
      'the controller mark: unscoped',
    );
    t.is((await request(`${url}/admin2/both`)).status, 500);
  } finally {
    await app.close();
  }
});

test.serial('a message handler (TCP microservice): @RequireTenant refuses it, @WithoutTenant runs it unscoped', async (t) => {
  const { Controller, Module } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const { ClientProxyFactory, MessagePattern, Transport } = await import('@nestjs/microservices');
  const { firstValueFrom } = await import('rxjs');
  const { MultitenantModule, RequireTenant, WithoutTenant } = await import('../src/hosts/nestjs');
  const { getCurrentTenantId } = await import('../src/index');
  const { f } = t.context;
  await f.reset();
  class Rpc {
    async guarded() {
      return { tenant: getCurrentTenantId() ?? null, count: await f.Product.count() };
    }
    async admin() {
      return { count: await f.Product.count() };
    }
  }
  const method = (name: keyof Rpc) =>
    [Rpc.prototype, name, Object.getOwnPropertyDescriptor(Rpc.prototype, name) as PropertyDescriptor] as const;
  MessagePattern('orders.guarded')(...method('guarded'));
  RequireTenant()(...method('guarded'));
  MessagePattern('orders.admin')(...method('admin'));
  WithoutTenant()(...method('admin'));
  Controller()(Rpc);
  class AppModule {}
  Module({ imports: [MultitenantModule.forRoot({})], controllers: [Rpc] })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  const net = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as { port: number };
      probe.close(() => resolve(free));
    });
  });
  app.connectMicroservice({ transport: Transport.TCP, options: { host: '127.0.0.1', port } }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  const client = ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } });
  try {
    const refused = await firstValueFrom(client.send('orders.guarded', {})).then(
      (ran) => ({ ran }),
      (err: unknown) => err,
    );
    t.deepEqual(refused, { status: 'error', message: 'Internal server error' }, 'refused, not run with no tenant');
    t.deepEqual(await firstValueFrom(client.send('orders.admin', {})), { count: 5 });
  } finally {
    client.close();
    await app.close();
  }
});
