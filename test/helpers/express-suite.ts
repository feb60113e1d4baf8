// tenantMiddleware with Express 4 and Express 5, over real HTTP, against the fixture database: the app of
// every host case (host-suite.ts, run by host-express.test.ts and hosts-cls.test.ts), and the cases only
// Express has — express.json() before or after the middleware, the tenant still set in the error
// handler, an app without the middleware — run by express-als.test.ts and express-cls.test.ts.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestFn } from 'ava';
import type { NextFunction, Request, Response } from 'express';
import { getCurrentTenantId, MultitenantError, setCurrentTenant, tenantMiddleware } from '../../src/index';
import { createFixture, type Fixture } from './fixture';
import { errorReply, type Host, pulled, resolveHeader } from './host-suite';
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

const resolver = (req: Request) => resolveHeader(req.header('x-store-id'));

function makeApp(express: Express, f: Fixture, bodyFirst: boolean) {
  const app = express();
  const json = express.json();
  const tenant = tenantMiddleware<Request>(resolver);
  const strictTenant = tenantMiddleware<Request>(resolver, { required: true });
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
  app.get('/pull', (_req, res) => {
    res.setHeader('content-type', 'text/plain');
    pulled(f).pipe(res);
  });
  app.get('/handler-set', (req, res) => {
    const before = getCurrentTenantId() ?? null;
    const h = req.header('x-set-store');
    if (h) setCurrentTenant(Number(h));
    res.json({ before, after: getCurrentTenantId() ?? null });
  });
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
  const { status, body } = errorReply(err, getCurrentTenantId());
  res.status(status).json(body);
}

/** Express as a host of the shared suite (host-suite.ts). */
export function expressHost(name: string, express: Express): Host {
  return {
    name,
    async start(f: Fixture) {
      const server = http.createServer(makeApp(express, f, false));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        async close() {
          server.closeAllConnections();
          await new Promise((r) => server.close(r));
        },
      };
    },
  };
}

export const expressVersions = versions;

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

    test.serial(`${name}: a handler that throws (sync or async) reaches the error handler with the tenant still set`, async (t) => {
      const sync = await request(`${url(t)}/boom`, { headers: { 'x-store-id': '3' } });
      t.deepEqual([sync.status, sync.body.message, sync.body.tenant], [500, 'handler threw', 3]);
      const async = await request(`${url(t)}/boom-async`, { headers: { 'x-store-id': '1' } });
      t.deepEqual([async.status, async.body.message, async.body.tenant], [500, 'async handler threw', 1]);
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
  }
}
