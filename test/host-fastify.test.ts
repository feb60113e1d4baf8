// fastifyTenant on Fastify 5, over real HTTP: the hostile cases of every host (host-suite.ts), and
// Fastify's own: encapsulation (a sibling context without the plugin has no tenant), the context put
// back after body parsing (preValidation, preHandler).
import anyTest, { type TestFn } from 'ava';
import type { FastifyRequest } from 'fastify';
import { fastifyTenant } from '../src/hosts/fastify';
import { type HostCtx, hostSuite } from './helpers/host-suite';
import { fastifyHost } from './helpers/hosts/fastify';
import { request } from './helpers/http';

const test = anyTest as TestFn<HostCtx>;
hostSuite(test, [fastifyHost()]);

test.serial('fastify 5: a sibling context without the plugin resolves no tenant (encapsulation)', async (t) => {
  const r = await request(`${t.context.started['fastify 5']?.url}/outside/whoami`, { headers: { 'x-store-id': '2' } });
  t.deepEqual([r.status, r.body.tenant], [200, null]);
});

test.serial('fastify 5: a resolver that is not a function fails the registration', async (t) => {
  const Fastify = (await import('fastify')).default;
  const app = Fastify();
  await t.throwsAsync(
    async () => {
      await app.register(fastifyTenant, { resolveTenant: 'x-store-id' as never });
      await app.ready();
    },
    { message: /resolveTenant must be a function/ },
  );
  await app.close();
});

test.serial('fastify 5: a body that arrives late (after the resolver, in chunks) still finds the tenant in the handler', async (t) => {
  await t.context.f.reset();
  const url = new URL(`${t.context.started['fastify 5']?.url}/products`);
  const http = await import('node:http');
  const reply = await new Promise<{ status: number; body: { tenant: number; store_id: number } }>((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-store-id': '3', 'transfer-encoding': 'chunked' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.flushHeaders();
    const parts = ['{"na', 'me":"la', 'te"}'];
    let i = 0;
    const timer = setInterval(() => {
      if (i < parts.length) req.write(parts[i++]);
      else {
        clearInterval(timer);
        req.end();
      }
    }, 20);
  });
  t.deepEqual(reply, { status: 201, body: { tenant: 3, store_id: 3 } });
});

test.serial('fastify 5: onRequestAbort and onTimeout hooks added after the plugin run with the request’s tenant', async (t) => {
  const Fastify = (await import('fastify')).default;
  const net = await import('node:net');
  const { getCurrentTenantId } = await import('../src/index');
  // Events, not sleeps: each step waits for the one before it, whatever the machine's load.
  const events = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const event = (name: string) => {
    let entry = events.get(name);
    if (!entry) {
      let resolve: () => void = () => undefined;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      entry = { promise, resolve };
      events.set(name, entry);
    }
    return entry;
  };
  const seen: Record<string, unknown> = {};
  const app = Fastify({ connectionTimeout: 0 });
  await app.register(fastifyTenant, { resolveTenant: (req) => req.headers['x-store-id'] as string | undefined });
  app.addHook('onRequestAbort', async (req) => {
    seen[`abort ${req.headers['x-store-id']}`] = getCurrentTenantId() ?? null;
    event(`abort ${req.headers['x-store-id']}`).resolve();
  });
  app.addHook('onTimeout', (req, _reply, done) => {
    seen[`timeout ${req.headers['x-store-id']}`] = getCurrentTenantId() ?? null;
    event(`timeout ${req.headers['x-store-id']}`).resolve();
    done();
  });
  const released = event('released');
  app.get('/slow', async (req) => {
    const tenant = req.headers['x-store-id'];
    if (tenant === '5') req.raw.setTimeout(150); // the socket times out while the handler still waits
    event(`started ${tenant}`).resolve();
    await released.promise; // answers only once the test is done
    return { ok: true };
  });
  const url = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
  try {
    // a client that goes away once its handler runs (tenant 4), and one whose socket times out (tenant 5)
    await Promise.all(
      [
        ['4', `started 4`],
        ['5', `timeout 5`],
      ].map(
        ([tenant, closeOn]) =>
          new Promise<void>((resolve) => {
            const socket = net.connect(Number(url.port), '127.0.0.1', () => {
              socket.write(`GET /slow HTTP/1.1\r\nhost: x\r\nx-store-id: ${tenant}\r\n\r\n`);
              void event(closeOn as string).promise.then(() => socket.destroy());
            });
            socket.on('error', () => undefined);
            socket.on('close', () => resolve());
          }),
      ),
    );
    await Promise.all([event('abort 4').promise, event('timeout 5').promise]);
    t.deepEqual(seen, { 'abort 4': '4', 'timeout 5': '5' });
  } finally {
    released.resolve();
    await app.close();
  }
});

for (const registration of ['awaited', 'not awaited (hooks added before the plugin loads)'] as const) {
  test.serial(
    `fastify 5: every hook of a request runs with its tenant, for four requests pipelined on one socket; plugin registration ${registration}`,
    async (t) => {
      const Fastify = (await import('fastify')).default;
      const net = await import('node:net');
      const { getCurrentTenantId } = await import('../src/index');
      const seen: string[] = [];
      const record = (hook: string, req: { headers: Record<string, unknown>; url: string }) =>
        seen.push(`${req.url} ${req.headers['x-store-id']} ${hook}: ${getCurrentTenantId() ?? 'none'}`);
      const app = Fastify();
      const registered = app.register(fastifyTenant, { resolveTenant: (req) => req.headers['x-store-id'] as string | undefined });
      if (registration === 'awaited') await registered;
      for (const hook of ['onRequest', 'preValidation', 'preHandler', 'onResponse'] as const) {
        app.addHook(hook, async (req: FastifyRequest) => {
          record(hook, req);
        });
      }
      app.addHook('preParsing', async (req, _reply, payload) => {
        record('preParsing', req);
        return payload;
      });
      app.addHook('preSerialization', async (req, _reply, payload) => {
        record('preSerialization', req);
        return payload;
      });
      app.addHook('onSend', (req, _reply, payload, done) => {
        record('onSend', req);
        done(null, payload);
      });
      app.addHook('onError', async (req) => {
        record('onError', req);
      });
      // hooks given in a route's options
      const routeHooks = {
        onResponse: async (req: { headers: Record<string, unknown>; url: string }) => {
          record('route onResponse', req);
        },
        preHandler: async (req: { headers: Record<string, unknown>; url: string }) => {
          record('route preHandler', req);
        },
      };
      app.get('/slow', routeHooks, async () => {
        await new Promise((r) => setTimeout(r, 80));
        return { ok: true };
      });
      app.get('/fast', routeHooks, async () => ({ ok: true }));
      app.get('/boom', async () => {
        throw new Error('boom');
      });
      const url = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
      try {
        const requests = [
          ['/slow', '2'],
          ['/fast', '3'],
          ['/boom', '4'],
          ['/fast', '5'],
        ];
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect(Number(url.port), '127.0.0.1', () => {
            // all four in one write: pipelined on one keep-alive socket
            socket.write(requests.map(([path, tenant]) => `GET ${path} HTTP/1.1\r\nhost: x\r\nx-store-id: ${tenant}\r\n\r\n`).join(''));
          });
          let received = '';
          socket.on('data', (chunk) => {
            received += chunk.toString();
            if ((received.match(/HTTP\/1\.1 \d{3}/g) ?? []).length === requests.length) {
              socket.end();
            }
          });
          socket.on('error', reject);
          socket.on('close', () => resolve());
        });
        // onResponse runs after the response is sent: wait until every request's has run
        // (up to 10 s: it ends as soon as they have, and leaves room for a machine under heavy load)
        for (let i = 0; i < 1000 && seen.filter((s) => / onResponse: /.test(s) && !/route/.test(s)).length < requests.length; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        const wrong = seen.filter((line) => {
          const [, tenant, , got] = /^\S+ (\S+) (.+): (\S+)$/.exec(line) ?? [];
          return tenant !== got;
        });
        t.deepEqual(wrong, [], seen.join('\n'));
        const hooksOf = (path: string, tenant: string) =>
          seen
            .filter((s) => s.startsWith(`${path} ${tenant} `))
            .map((s) => s.replace(/^\S+ \S+ (.+): \S+$/, '$1'))
            .sort();
        t.deepEqual(hooksOf('/slow', '2'), [
          'onRequest',
          'onResponse',
          'onSend',
          'preHandler',
          'preParsing',
          'preSerialization',
          'preValidation',
          'route onResponse',
          'route preHandler',
        ]);
        t.deepEqual(hooksOf('/boom', '4'), ['onError', 'onRequest', 'onResponse', 'onSend', 'preHandler', 'preParsing', 'preValidation']);
      } finally {
        await app.close();
      }
    },
  );
}
