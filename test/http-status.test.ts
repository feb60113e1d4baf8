// Every refusal reaches the client with its HTTP status through each host's own, default error handling
// (no handler of the application's): the errors carry `status`, `statusCode` and `expose` (the http-errors
// convention Express, Koa, Fastify and NestJS 11 read). A request with no tenant on a required route is
// 401, an invalid tenant 400, a write of another tenant's row 403, an unscoped statement 500 with its
// message kept from the client.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import anyTest, { type TestFn } from 'ava';
import { fastifyTenant } from '../src/hosts/fastify';
import { koaTenant } from '../src/hosts/koa';
import {
  InvalidTenantError,
  MissingTenantError,
  MultitenantError,
  TenantMismatchError,
  tenantMiddleware,
  UnscopedQueryError,
} from '../src/index';
import { onCitus } from './helpers/db';
import { createFixture, type Fixture } from './helpers/fixture';
import { request } from './helpers/http';

const test = anyTest as TestFn<Fixture>;
test.before(async (t) => {
  t.context = await createFixture({ audit: 'throw' });
});
test.after.always(async (t) => t.context?.close());

/** The tenant from the x-store-id header as it came: 'abc' fits no tenant column (INTEGER here). */
const header = (value: unknown) => (value === undefined || value === '' ? undefined : String(value));

/** Handlers that began to run. */
let ran = 0;

/** What each route does (under the request's tenant). */
function routes(f: Fixture) {
  return {
    count: async () => {
      ran += 1;
      return { count: await f.Product.count() };
    },
    steal: async () => f.Product.create({ name: 'stolen', store_id: 2 }),
    raw: async () => f.sequelize.query('SELECT count(*) FROM products'),
  };
}

interface Started {
  url: string;
  close(): Promise<void>;
}

const hosts: Array<[string, (f: Fixture) => Promise<Started>]> = [
  [
    'express 5',
    async (f) => {
      const express = (await import('express')).default;
      const app = express();
      app.set('env', 'production'); // Express's default handler shows the stack outside production
      const r = routes(f);
      app.use(
        '/required',
        tenantMiddleware((req) => header(req.headers['x-store-id']), { required: true }),
      );
      app.use(tenantMiddleware((req) => header(req.headers['x-store-id'])));
      for (const [name, fn] of Object.entries(r)) {
        app.get(`/${name}`, async (_req, res) => void res.json(await fn()));
        app.get(`/required/${name}`, async (_req, res) => void res.json(await fn()));
      }
      return listen(http.createServer(app));
    },
  ],
  [
    'koa 3',
    async (f) => {
      const Koa = require('koa') as new () => {
        use(fn: unknown): unknown;
        callback(): http.RequestListener;
        silent: boolean;
      };
      const app = new Koa();
      app.silent = true;
      const r = routes(f) as Record<string, () => Promise<unknown>>;
      // biome-ignore lint/suspicious/noExplicitAny: Koa's context
      const tenant = (required: boolean) => koaTenant((ctx: any) => header(ctx.get('x-store-id')), { required });
      // biome-ignore lint/suspicious/noExplicitAny: Koa's context
      app.use((ctx: any, next: () => Promise<unknown>) => tenant(ctx.path.startsWith('/required'))(ctx, next));
      // biome-ignore lint/suspicious/noExplicitAny: Koa's context
      app.use(async (ctx: any) => {
        const fn = r[ctx.path.replace(/^\/(required\/)?/, '')];
        if (fn) ctx.body = await fn();
      });
      return listen(http.createServer(app.callback()));
    },
  ],
  [
    'fastify 5',
    async (f) => {
      const Fastify = (await import('fastify')).default;
      const app = Fastify();
      const r = routes(f);
      for (const [prefix, required] of [
        ['', false],
        ['/required', true],
      ] as const) {
        await app.register(
          async (scoped) => {
            await scoped.register(fastifyTenant, { resolveTenant: (req) => header(req.headers['x-store-id']), required });
            for (const [name, fn] of Object.entries(r)) scoped.get(`/${name}`, async () => fn());
          },
          { prefix },
        );
      }
      const address = await app.listen({ port: 0, host: '127.0.0.1' });
      return { url: address, close: () => app.close() };
    },
  ],
  [
    'nestjs 11 (express)',
    async (f) => {
      const { Controller, Get, Module } = await import('@nestjs/common');
      const { NestFactory } = await import('@nestjs/core');
      const { MultitenantModule, RequireTenant } = await import('../src/hosts/nestjs');
      const r = routes(f);
      class Routes {}
      for (const [name, fn] of Object.entries(r)) {
        for (const required of [false, true]) {
          const method = `${required ? 'required_' : ''}${name}`;
          // a function of its own per route: Nest keeps a route's metadata on the function
          Object.defineProperty(Routes.prototype, method, { value: () => fn(), writable: true, configurable: true });
          const descriptor = Object.getOwnPropertyDescriptor(Routes.prototype, method) as PropertyDescriptor;
          Get(`${required ? 'required/' : ''}${name}`)(Routes.prototype, method, descriptor);
          if (required) RequireTenant()(Routes.prototype, method, descriptor);
        }
      }
      Controller()(Routes);
      class AppModule {}
      Module({
        imports: [
          MultitenantModule.forRoot({ resolveTenant: (req: { headers: Record<string, string> }) => header(req.headers['x-store-id']) }),
        ],
        controllers: [Routes],
      })(AppModule);
      const app = await NestFactory.create(AppModule, { logger: false });
      await app.listen(0, '127.0.0.1');
      return { url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), close: () => app.close() };
    },
  ],
];

function listen(server: http.Server): Promise<Started> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}

test('each error class carries its status, statusCode and expose', (t) => {
  const cases: Array<[MultitenantError, number]> = [
    [new MultitenantError('x'), 500],
    [new MissingTenantError('x'), 500],
    [new MissingTenantError('x', { status: 401 }), 401],
    [new InvalidTenantError('x'), 400],
    [new TenantMismatchError('x'), 403],
    [new UnscopedQueryError('x', { table: 't', sql: 's' }), 500],
  ];
  for (const [err, status] of cases) t.deepEqual([err.status, err.statusCode, err.expose], [status, status, status < 500], err.name);
});

for (const [name, start] of hosts) {
  (onCitus ? test.skip : test.serial)(`${name}: the host's default error handling answers each refusal with its status`, async (t) => {
    const f = t.context;
    await f.reset();
    const app = await start(f);
    try {
      const get = (path: string, tenant?: string) =>
        request(`${app.url}${path}`, tenant === undefined ? {} : { headers: { 'x-store-id': tenant } });
      const ok = await get('/required/count', '1');
      t.deepEqual([ok.status, ok.body?.count], [200, 2], 'a tenant: the route runs');
      t.is((await get('/count')).status, 200, 'no tenant on a route that does not require one: runs');
      t.is((await get('/required/count')).status, 401, 'no tenant on a required route');
      const before = ran;
      const invalid = await get('/count', 'abc');
      t.is(invalid.status, 400, 'a tenant no tenant column can hold');
      t.is(ran, before, 'refused by the host: the handler never ran');
      // (Express's default handler sends only the status's text in production, whatever the error)
      const shows = !name.startsWith('express');
      if (shows) t.regex(invalid.text, /tenant/i, 'its message reaches the client');
      const mismatch = await get('/steal', '1');
      t.is(mismatch.status, 403, "a write of another tenant's row");
      if (shows) t.regex(mismatch.text, /store_id|tenant/i);
      const unscoped = await get('/raw', '1');
      t.is(unscoped.status, 500, 'an unscoped statement');
      // expose: false keeps the message (the SQL) from the client where the host reads it (Express in
      // production, Koa, NestJS); Fastify's default handler sends every message (docs/reference.md)
      if (!name.startsWith('fastify')) t.notRegex(unscoped.text, /SELECT count/, 'its message (the SQL) is kept from the client');
      t.deepEqual(
        (await f.rows('products')).filter((r) => r.name === 'stolen'),
        [],
        'nothing was written',
      );
    } finally {
      await app.close();
    }
  });
}
