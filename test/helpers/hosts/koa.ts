// The host-suite app on Koa (2 and 3) with koaTenant.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { koaTenant } from '../../../src/hosts/koa';
import { getCurrentTenantId, setCurrentTenant } from '../../../src/index';
import type { Fixture } from '../fixture';
import { errorReply, type Host, productsOf, pulled, pushed, resolveHeader } from '../host-suite';

/** Koa 2 and 3 (loaded untyped: one helper for both releases; the consumer fixture checks @types/koa). */
type KoaClass = new () => { use(fn: unknown): unknown; callback(): http.RequestListener };
// biome-ignore lint/suspicious/noExplicitAny: Koa 2 and 3 contexts alike
type Ctx = any;

async function readJson(ctx: Ctx): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of ctx.req) text += chunk;
  return text ? JSON.parse(text) : {};
}

export function koaHost(name: string, Koa: KoaClass): Host {
  return {
    name,
    async start(f: Fixture) {
      const app = new Koa();
      app.use(async (ctx: Ctx, next: () => Promise<unknown>) => {
        try {
          await next();
        } catch (err) {
          const { status, body } = errorReply(err, getCurrentTenantId());
          ctx.status = status;
          ctx.body = body;
        }
      });
      const header = (ctx: Ctx) => resolveHeader(ctx.get('x-store-id') || undefined);
      const tenant = koaTenant(header);
      const required = koaTenant(header, { required: true });
      app.use((ctx: Ctx, next: () => Promise<unknown>) => (ctx.path.startsWith('/required') ? required(ctx, next) : tenant(ctx, next)));
      app.use(async (ctx: Ctx, next: () => Promise<unknown>) => {
        if (ctx.path.startsWith('/set')) {
          const h = ctx.get('x-set-store');
          if (h) setCurrentTenant(Number(h));
        }
        await next();
      });
      app.use(async (ctx: Ctx) => {
        const path = ctx.path.replace(/^\/(set|required)/, '');
        if (path === '/whoami') ctx.body = { tenant: getCurrentTenantId() ?? null, port: ctx.req.socket.remotePort };
        else if (path === '/products' && ctx.method === 'GET')
          ctx.body = { tenant: getCurrentTenantId() ?? null, rows: await productsOf(f) };
        else if (ctx.path === '/products' && ctx.method === 'POST') {
          const body = await readJson(ctx);
          const made = await f.Product.create({ name: body.name });
          ctx.status = 201;
          ctx.body = { tenant: getCurrentTenantId(), store_id: made.get('store_id') };
        } else if (ctx.path === '/set/products') {
          const body = await readJson(ctx);
          await sleep(Number(body.wait ?? 0));
          const made = await f.Product.create({ name: body.name });
          await sleep(Number(body.wait ?? 0));
          const rows = await f.Product.findAll({ attributes: ['store_id'] });
          ctx.status = 201;
          ctx.body = { tenant: getCurrentTenantId() ?? null, made: made.get('store_id'), seen: rows.map((r) => r.get('store_id')) };
        } else if (path === '/stream') {
          ctx.type = 'text/plain';
          ctx.body = pushed(f);
        } else if (ctx.path === '/web' || ctx.path === '/web-response') {
          // a web stream, pulled one chunk at a time by whoever reads it (highWaterMark 0)
          let i = 0;
          const web = new ReadableStream(
            {
              async pull(controller) {
                if (i === 3) return controller.close();
                controller.enqueue(
                  new TextEncoder().encode(`${i++ ? '|' : ''}${getCurrentTenantId() ?? 'none'}:${await f.Product.count()}`),
                );
              },
            },
            { highWaterMark: 0 },
          );
          ctx.body = ctx.path === '/web' ? web : new Response(web, { headers: { 'content-type': 'text/plain' } });
        } else if (ctx.path === '/pull') {
          ctx.type = 'text/plain';
          ctx.body = pulled(f);
        } else if (ctx.path === '/handler-set') {
          const before = getCurrentTenantId() ?? null;
          const h = ctx.get('x-set-store');
          if (h) setCurrentTenant(Number(h));
          ctx.body = { before, after: getCurrentTenantId() ?? null };
        } else if (path === '/boom') throw new Error('handler threw');
        else if (path === '/boom-async') {
          await sleep(1);
          throw new Error('async handler threw');
        } else ctx.status = 404;
      });
      const server = http.createServer(app.callback());
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
