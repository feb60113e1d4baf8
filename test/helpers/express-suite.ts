// tenantMiddleware with Express 4 and Express 5, over real HTTP, against the fixture database;
// run by express-als.test.ts (AsyncLocalStorage) and express-cls.test.ts (Sequelize.useCLS namespace).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestFn } from 'ava';
import type { NextFunction, Request, Response } from 'express';
import {
  getCurrentTenantId,
  InvalidTenantError,
  MissingTenantError,
  MultitenantError,
  multitenant,
  setCurrentTenant,
  tenantMiddleware,
} from '../../src/index';
import { createFixture, type Fixture } from './fixture';
import { request } from './http';

type Express = typeof import('express');
const versions: Array<[string, Express]> = [
  ['express 4', require('express4') as Express],
  ['express 5', require('express') as Express],
];

export interface Ctx {
  f: Fixture;
  servers: Record<string, { server: http.Server; url: string }>;
}

let lookupIn: Fixture | undefined;
function resolver(req: Request): unknown {
  const h = req.header('x-store-id');
  if (h?.startsWith('lookup:')) return (lookupIn as Fixture).Store.findOne({ where: { name: h.slice(7) } }).then((s) => s?.get('id'));
  if (h === 'throw') throw new Error('resolver exploded');
  if (h === 'reject') return Promise.reject(new Error('resolver rejected'));
  if (h === 'object') return {};
  if (h?.startsWith('async:')) return sleep(5).then(() => Number(h.slice(6)));
  return h ? Number(h) : undefined;
}

function makeApp(express: Express, f: Fixture, bodyFirst: boolean) {
  const app = express();
  const json = express.json();
  const tenant = tenantMiddleware<Request>(resolver as never);
  const strictTenant = tenantMiddleware<Request>(resolver as never, { required: true });
  const wrap = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch(next);
  };
  if (bodyFirst) app.use(json);
  app.use('/required', strictTenant);
  app.use(tenant);
  if (!bodyFirst) app.use(json);
  const whoami = (req: Request, res: Response) => res.json({ tenant: getCurrentTenantId() ?? null, port: req.socket.remotePort });
  app.get('/whoami', whoami);
  app.get('/required/whoami', whoami);
  app.get(
    '/products',
    wrap(async (_req, res) => {
      await sleep(Math.floor(Math.random() * 3));
      const rows = await f.Product.findAll({ attributes: ['id', 'store_id', 'name'], order: [['id', 'ASC']] });
      res.json({ tenant: getCurrentTenantId() ?? null, rows: rows.map((r) => r.get({ plain: true })) });
    }),
  );
  app.post(
    '/products',
    wrap(async (req, res) => {
      const made = await f.Product.create({ name: req.body.name });
      res.status(201).json({ tenant: getCurrentTenantId(), store_id: made.get('store_id') });
    }),
  );
  app.get(
    '/stream',
    wrap(async (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      for (let i = 0; i < 5; i++) {
        await sleep(2);
        res.write(`${getCurrentTenantId()}:${await f.Product.count()}\n`);
      }
      res.end();
    }),
  );
  // The django-multitenant pattern: a later middleware sets the tenant of the request it runs in.
  app.use('/set', (req, _res, next) => {
    const h = req.header('x-set-store');
    if (h) setCurrentTenant(Number(h));
    next();
  });
  app.get('/set/whoami', whoami);
  app.post(
    '/set/products',
    wrap(async (req, res) => {
      await sleep(Number(req.body.wait ?? 0));
      const made = await f.Product.create({ name: req.body.name });
      await sleep(Number(req.body.wait ?? 0));
      const rows = await f.Product.findAll({ attributes: ['store_id'] });
      res.status(201).json({ tenant: getCurrentTenantId() ?? null, made: made.get('store_id'), seen: rows.map((r) => r.get('store_id')) });
    }),
  );
  app.get('/boom', () => {
    throw new Error('handler threw');
  });
  app.get(
    '/boom-async',
    wrap(async () => {
      await sleep(1);
      throw new Error('async handler threw');
    }),
  );
  app.use(errorHandler);
  return app;
}

function errorHandler(err: Error, _req: Request, res: Response, _next: NextFunction) {
  const status = err instanceof InvalidTenantError ? 400 : err instanceof MissingTenantError ? 401 : 500;
  res.status(status).json({ error: err.name, message: err.message, tenant: getCurrentTenantId() ?? null });
}

/** An application that forgot tenantMiddleware and sets the tenant by hand. */
function bareApp(express: Express) {
  const app = express();
  app.use((req, _res, next) => {
    const h = req.header('x-set-store');
    if (h) setCurrentTenant(Number(h));
    next();
  });
  app.get('/whoami', (_req, res) => res.json({ tenant: getCurrentTenantId() ?? null }));
  app.use(errorHandler);
  return app;
}

export function expressSuite(test: TestFn<Ctx>): void {
  test.before(async (t) => {
    const f = await createFixture();
    lookupIn = f;
    const servers: Ctx['servers'] = {};
    for (const [name, express] of versions) {
      for (const bodyFirst of [false, true]) {
        const server = http.createServer(makeApp(express, f, bodyFirst));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        servers[`${name}${bodyFirst ? ' json-first' : ''}`] = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
      }
      const bare = http.createServer(bareApp(express));
      await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
      servers[`${name} bare`] = { server: bare, url: `http://127.0.0.1:${(bare.address() as AddressInfo).port}` };
    }
    t.context = { f, servers };
  });
  test.after.always(async (t) => {
    for (const { server } of Object.values(t.context?.servers ?? {})) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    await t.context?.f.close();
  });

  for (const [name] of versions) {
    const url = (t: { context: Ctx }, jsonFirst = false) => t.context.servers[`${name}${jsonFirst ? ' json-first' : ''}`]?.url as string;

    test.serial(`${name}: a sync resolver scopes the whole request`, async (t) => {
      await t.context.f.reset();
      const r = await request(`${url(t)}/products`, { headers: { 'x-store-id': '2' } });
      t.is(r.status, 200);
      t.is(r.body.tenant, 2);
      t.deepEqual(
        r.body.rows.map((p: { name: string }) => p.name),
        ['apple-B', 'pear-B', 'plum-B'],
      );
    });

    test.serial(`${name}: an async resolver scopes the whole request`, async (t) => {
      const r = await request(`${url(t)}/products`, { headers: { 'x-store-id': 'async:1' } });
      t.is(r.body.tenant, 1);
      t.deepEqual(
        r.body.rows.map((p: { store_id: number }) => p.store_id),
        [1, 1],
      );
    });

    test.serial(`${name}: a resolver returning nothing leaves the request without a tenant; required: true refuses it`, async (t) => {
      const r = await request(`${url(t)}/products`);
      t.is(r.body.tenant, null);
      t.is(r.body.rows.length, 5);
      const refused = await request(`${url(t)}/required/whoami`);
      t.is(refused.status, 401);
      t.is(refused.body.error, 'MissingTenantError');
      t.is((await request(`${url(t)}/required/whoami`, { headers: { 'x-store-id': '3' } })).body.tenant, 3);
    });

    test.serial(
      `${name}: a resolver that throws or rejects reaches the error handler; an invalid tenant is InvalidTenantError`,
      async (t) => {
        const thrown = await request(`${url(t)}/whoami`, { headers: { 'x-store-id': 'throw' } });
        t.deepEqual([thrown.status, thrown.body.message], [500, 'resolver exploded']);
        const rejected = await request(`${url(t)}/whoami`, { headers: { 'x-store-id': 'reject' } });
        t.deepEqual([rejected.status, rejected.body.message], [500, 'resolver rejected']);
        const invalid = await request(`${url(t)}/whoami`, { headers: { 'x-store-id': 'object' } });
        t.deepEqual([invalid.status, invalid.body.error], [400, 'InvalidTenantError']);
      },
    );

    for (const jsonFirst of [false, true]) {
      test.serial(
        `${name}: express.json() ${jsonFirst ? 'before' : 'after'} the middleware: the body and the tenant both arrive`,
        async (t) => {
          await t.context.f.reset();
          const r = await request(`${url(t, jsonFirst)}/products`, {
            method: 'POST',
            headers: { 'x-store-id': '2' },
            body: { name: 'posted' },
          });
          t.is(r.status, 201);
          t.deepEqual(r.body, { tenant: 2, store_id: 2 });
          t.deepEqual(
            (await t.context.f.rows('products')).filter((p) => p.name === 'posted').map((p) => p.store_id),
            [2],
          );
        },
      );
    }

    test.serial(`${name}: in strict mode the resolver's own lookup of the tenant works (it runs as withoutTenant would)`, async (t) => {
      const { f } = t.context;
      await f.reset();
      multitenant(f.sequelize, { ...f.options, strict: true });
      try {
        const r = await request(`${url(t)}/products`, { headers: { 'x-store-id': 'lookup:B' } });
        t.deepEqual([r.status, r.body.tenant, r.body.rows.length], [200, 2, 3]);
        t.is((await request(`${url(t)}/products`)).status, 401);
      } finally {
        multitenant(f.sequelize, { ...f.options, strict: false });
      }
    });

    test.serial(`${name}: a streaming response keeps the tenant between chunks`, async (t) => {
      await t.context.f.reset();
      const [a, b] = await Promise.all([
        request(`${url(t)}/stream`, { headers: { 'x-store-id': '1' } }),
        request(`${url(t)}/stream`, { headers: { 'x-store-id': '2' } }),
      ]);
      t.is(a.text, '1:2\n'.repeat(5));
      t.is(b.text, '2:3\n'.repeat(5));
    });

    test.serial(`${name}: a handler that throws (sync or async) reaches the error handler with the tenant still set`, async (t) => {
      const sync = await request(`${url(t)}/boom`, { headers: { 'x-store-id': '3' } });
      t.deepEqual([sync.status, sync.body.message, sync.body.tenant], [500, 'handler threw', 3]);
      const async = await request(`${url(t)}/boom-async`, { headers: { 'x-store-id': '1' } });
      t.deepEqual([async.status, async.body.message, async.body.tenant], [500, 'async handler threw', 1]);
    });

    test.serial(`${name}: a keep-alive socket reused across tenants never carries the previous request's tenant`, async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const sequence = ['1', '', '2', '', 'async:3', '1', ''];
      const seen: Array<[unknown, number]> = [];
      for (const h of sequence) {
        const r = await request(`${url(t)}/whoami`, { agent, headers: h ? { 'x-store-id': h } : {} });
        seen.push([r.body.tenant, r.body.port]);
      }
      agent.destroy();
      t.deepEqual(
        seen.map((s) => s[0]),
        [1, null, 2, null, 3, 1, null],
      );
      t.is(new Set(seen.map((s) => s[1])).size, 1, 'all requests went over one socket');
    });

    test.serial(
      `${name}: setCurrentTenant in a later middleware sets this request's tenant only, never the next one on the socket`,
      async (t) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const seen: Array<[unknown, number]> = [];
        for (const h of ['1', '', '2', '', '']) {
          const r = await request(`${url(t)}/set/whoami`, { agent, headers: h ? { 'x-set-store': h } : {} });
          seen.push([r.body.tenant, r.body.port]);
        }
        agent.destroy();
        t.deepEqual(
          seen.map((s) => s[0]),
          [1, null, 2, null, null],
        );
        t.is(new Set(seen.map((s) => s[1])).size, 1, 'all requests went over one socket');
      },
    );

    test.serial(`${name}: concurrent requests that set their tenant by hand each read and write only their own rows`, async (t) => {
      await t.context.f.reset();
      const replies = await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const tenant = (i % 2) + 1;
          return request(`${url(t)}/set/products`, {
            method: 'POST',
            headers: { 'x-set-store': String(tenant) },
            body: { name: `hand-${i}`, wait: (i * 7) % 5 },
          }).then((r) => ({ r, tenant }));
        }),
      );
      const wrong = replies.filter(
        ({ r, tenant }) => r.body.tenant !== tenant || r.body.made !== tenant || r.body.seen.some((s: number) => s !== tenant),
      );
      t.deepEqual(wrong, []);
      const made = (await t.context.f.rows('products', 'store_id, id')).filter((p) => String(p.name).startsWith('hand-'));
      t.deepEqual(
        made.map((p) => (Number(String(p.name).slice(5)) % 2 === 0 ? p.store_id === 1 : p.store_id === 2)).filter((ok) => !ok),
        [],
      );
    });

    test.serial(
      `${name}: without tenantMiddleware, setCurrentTenant refuses (it would outlive the request); nothing carries over`,
      async (t) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const bare = t.context.servers[`${name} bare`]?.url as string;
        const first = await request(`${bare}/whoami`, { agent, headers: { 'x-set-store': '1' } });
        t.is(first.status, 500);
        t.is(first.body.error, MultitenantError.name);
        t.regex(first.body.message, /no unit of work to set the tenant in/);
        const next = await request(`${bare}/whoami`, { agent });
        t.is(next.body.tenant, null);
        agent.destroy();
      },
    );

    test.serial(`${name}: 450 concurrent requests alternating three tenants: 0 rows of the wrong tenant`, async (t) => {
      await t.context.f.reset();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 25 });
      const expected: Record<number, number> = { 1: 2, 2: 3, 3: 0 };
      let leaks = 0;
      let wrongTenant = 0;
      let wrongCount = 0;
      const replies = await Promise.all(
        Array.from({ length: 450 }, (_, i) => {
          const tenant = (i % 3) + 1;
          return request(`${url(t)}/products`, { agent, headers: { 'x-store-id': i % 2 ? `async:${tenant}` : String(tenant) } }).then(
            (r) => ({ r, tenant }),
          );
        }),
      );
      agent.destroy();
      for (const { r, tenant } of replies) {
        if (r.body.tenant !== tenant) wrongTenant++;
        leaks += r.body.rows.filter((p: { store_id: number }) => p.store_id !== tenant).length;
        if (r.body.rows.length !== expected[tenant]) wrongCount++;
      }
      t.log(`${replies.length} requests, ${leaks} rows of another tenant, ${wrongTenant} wrong tenants seen`);
      t.is(replies.length, 450);
      t.deepEqual({ leaks, wrongTenant, wrongCount }, { leaks: 0, wrongTenant: 0, wrongCount: 0 });
    });
  }
}
