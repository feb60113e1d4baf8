// The host-suite app on Fastify 5 with the fastifyTenant plugin.
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { type FastifyTenantOptions, fastifyTenant } from '../../../src/hosts/fastify';
import { getCurrentTenantId, setCurrentTenant } from '../../../src/index';
import type { Fixture } from '../fixture';
import { errorReply, type Host, productsOf, pulled, pushed, resolveHeader } from '../host-suite';

type Req = { headers: Record<string, string | undefined>; socket: { remotePort?: number }; body?: Record<string, unknown> };

export function fastifyHost(name = 'fastify 5'): Host {
  return {
    name,
    async start(f: Fixture) {
      const app = Fastify();
      // typed by the plugin's options: a FastifyRequest, no annotation
      const header: FastifyTenantOptions['resolveTenant'] = (req) => resolveHeader(req.headers['x-store-id'] as string | undefined);
      app.setErrorHandler((err, _req, reply) => {
        const { status, body } = errorReply(err, getCurrentTenantId());
        reply.status(status).send(body);
      });
      const whoami = async (req: Req) => ({ tenant: getCurrentTenantId() ?? null, port: req.socket.remotePort });
      // the routes of a child context: the plugin reaches them through encapsulation
      await app.register(async (scoped) => {
        await scoped.register(fastifyTenant, { resolveTenant: header });
        scoped.get('/whoami', whoami as never);
        scoped.get('/products', async () => ({ tenant: getCurrentTenantId() ?? null, rows: await productsOf(f) }));
        scoped.post('/products', async (req, reply) => {
          const made = await f.Product.create({ name: (req.body as { name: string }).name });
          reply.status(201);
          return { tenant: getCurrentTenantId(), store_id: made.get('store_id') };
        });
        scoped.get('/stream', async (_req, reply) => {
          reply.type('text/plain');
          return reply.send(pushed(f));
        });
        scoped.get('/pull', async (_req, reply) => {
          reply.type('text/plain');
          return reply.send(pulled(f));
        });
        scoped.get('/handler-set', async (req) => {
          const before = getCurrentTenantId() ?? null;
          const h = req.headers['x-set-store'] as string | undefined;
          if (h) setCurrentTenant(Number(h));
          return { before, after: getCurrentTenantId() ?? null };
        });
        scoped.get('/boom', () => {
          throw new Error('handler threw');
        });
        scoped.get('/boom-async', async () => {
          await sleep(1);
          throw new Error('async handler threw');
        });
        // a later hook sets the tenant of the request it runs in (and of nothing else)
        await scoped.register(async (set) => {
          set.addHook('preHandler', async (req) => {
            const h = (req.headers as Record<string, string | undefined>)['x-set-store'];
            if (h) setCurrentTenant(Number(h));
          });
          set.get('/set/whoami', whoami as never);
          set.post('/set/products', async (req, reply) => {
            const body = req.body as { name: string; wait?: number };
            await sleep(Number(body.wait ?? 0));
            const made = await f.Product.create({ name: body.name });
            await sleep(Number(body.wait ?? 0));
            const rows = await f.Product.findAll({ attributes: ['store_id'] });
            reply.status(201);
            return { tenant: getCurrentTenantId() ?? null, made: made.get('store_id'), seen: rows.map((r) => r.get('store_id')) };
          });
        });
      });
      await app.register(async (required) => {
        await required.register(fastifyTenant, { resolveTenant: header, required: true });
        required.get('/required/whoami', whoami as never);
      });
      // a sibling context without the plugin: encapsulation keeps it out
      await app.register(async (other) => {
        other.get('/outside/whoami', whoami as never);
      });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      return {
        url,
        async close() {
          await app.close();
        },
      };
    },
  };
}
