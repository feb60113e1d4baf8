// The hostile cases every host integration must pass (Express, Fastify, Koa, NestJS), over real HTTP
// against the fixture database. A host is an app with the same routes:
//   GET /whoami, GET /required/whoami (required: true), GET|POST /products, GET /stream,
//   /set/whoami and POST /set/products (a later middleware or hook calls setCurrentTenant(x-set-store)),
//   GET /pull (a stream body pulled from an async generator — read by the framework after the handler),
//   GET /boom, GET /boom-async, GET /handler-set (the handler calls setCurrentTenant(x-set-store));
//   errors answered as { error, message, tenant } with 400 for
//   InvalidTenantError, 401 for MissingTenantError, 500 otherwise.
// The resolver reads x-store-id: a number, `async:<n>`, `throw`, `reject`, `object` (invalid).
import http from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestFn } from 'ava';
import { getCurrentTenantId, InvalidTenantError, MissingTenantError, multitenant, type ResolvedTenant } from '../../src/index';
import { createFixture, type Fixture } from './fixture';
import { request } from './http';

export interface Started {
  url: string;
  close(): Promise<void>;
}
export interface Host {
  name: string;
  start(f: Fixture): Promise<Started>;
}
export interface HostCtx {
  f: Fixture;
  started: Record<string, Started>;
}

let lookupIn: Fixture | undefined;

/** The resolver of every host app, by header value (`lookup:<name>` finds the store by name, as apps do). */
export function resolveHeader(value: string | undefined): ResolvedTenant | Promise<ResolvedTenant> {
  if (value?.startsWith('lookup:')) {
    return (lookupIn as Fixture).Store.findOne({ where: { name: value.slice(7) } }).then((store) => store?.get('id') as number | undefined);
  }
  // `raw:<text>`: the resolver returns the (URI-decoded) text as it is — '' or whitespace, as a header read gives it
  if (value?.startsWith('raw:')) return decodeURIComponent(value.slice(4));
  if (value === 'throw') throw new Error('resolver exploded');
  if (value === 'reject') return Promise.reject(new Error('resolver rejected'));
  if (value === 'object') return {} as never;
  if (value?.startsWith('async:')) return sleep(5).then(() => Number(value.slice(6)));
  return value ? Number(value) : undefined;
}

/** The status and body every host answers an error with. */
export function errorReply(err: unknown, tenant: unknown): { status: number; body: Record<string, unknown> } {
  const e = err as Error;
  const status = err instanceof InvalidTenantError ? 400 : err instanceof MissingTenantError ? 401 : 500;
  return { status, body: { error: e?.name, message: e?.message, tenant: tenant ?? null } };
}

/** A stream fed by the handler's own async work: five lines of the tenant and its product count. */
export function pushed(f: Fixture): PassThrough {
  const out = new PassThrough();
  (async () => {
    for (let i = 0; i < 5; i++) {
      await sleep(2);
      out.write(`${getCurrentTenantId()}:${await f.Product.count()}\n`);
    }
    out.end();
  })();
  return out;
}

/** A stream that reads the tenant and counts products each time it is pulled (after the handler returned). */
export function pulled(f: Fixture): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < 3; i++) {
        await sleep(2);
        yield `${i ? '|' : ''}${getCurrentTenantId() ?? 'none'}:${await f.Product.count()}`;
      }
    })(),
  );
}

/** The product rows a request sees, and a product created in it, as the routes answer. */
export async function productsOf(f: Fixture) {
  await sleep(Math.floor(Math.random() * 3));
  const rows = await f.Product.findAll({ attributes: ['id', 'store_id', 'name'], order: [['id', 'ASC']] });
  return rows.map((r) => r.get({ plain: true }));
}

export function hostSuite(test: TestFn<HostCtx>, hosts: Host[]): void {
  test.before(async (t) => {
    const f = await createFixture();
    lookupIn = f;
    const started: HostCtx['started'] = {};
    for (const host of hosts) started[host.name] = await host.start(f);
    t.context = { f, started };
  });
  test.after.always(async (t) => {
    for (const s of Object.values(t.context?.started ?? {})) await s.close();
    await t.context?.f.close();
  });

  for (const host of hosts) {
    const name = host.name;
    const url = (t: { context: HostCtx }) => t.context.started[name]?.url as string;

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

    test.serial(`${name}: a resolver returning nothing leaves the request without a tenant; required refuses it`, async (t) => {
      const r = await request(`${url(t)}/products`);
      t.is(r.body.tenant, null);
      t.is(r.body.rows.length, 5);
      const refused = await request(`${url(t)}/required/whoami`);
      t.is(refused.status, 401);
      t.is(refused.body.error, 'MissingTenantError');
      t.is((await request(`${url(t)}/required/whoami`, { headers: { 'x-store-id': '3' } })).body.tenant, 3);
    });

    test.serial(`${name}: a resolver returning '' or only whitespace means no tenant; required refuses it`, async (t) => {
      for (const header of ['raw:', 'raw:%20%20', 'raw:%09%20']) {
        const free = await request(`${url(t)}/products`, { headers: { 'x-store-id': header } });
        t.is(free.status, 200, header);
        t.is(free.body.tenant, null, header);
        t.is(free.body.rows.length, 5, header);
        const refused = await request(`${url(t)}/required/whoami`, { headers: { 'x-store-id': header } });
        t.is(refused.status, 401, header);
        t.is(refused.body.error, 'MissingTenantError', header);
      }
    });

    test.serial(`${name}: a resolver that throws or rejects fails the request; an invalid tenant is InvalidTenantError`, async (t) => {
      const thrown = await request(`${url(t)}/whoami`, { headers: { 'x-store-id': 'throw' } });
      t.deepEqual([thrown.status, thrown.body.message], [500, 'resolver exploded']);
      const rejected = await request(`${url(t)}/whoami`, { headers: { 'x-store-id': 'reject' } });
      t.deepEqual([rejected.status, rejected.body.message], [500, 'resolver rejected']);
      const invalid = await request(`${url(t)}/whoami`, { headers: { 'x-store-id': 'object' } });
      t.deepEqual([invalid.status, invalid.body.error], [400, 'InvalidTenantError']);
    });

    test.serial(`${name}: a JSON body and the tenant both arrive; the row is stamped`, async (t) => {
      await t.context.f.reset();
      const r = await request(`${url(t)}/products`, { method: 'POST', headers: { 'x-store-id': '2' }, body: { name: 'posted' } });
      t.is(r.status, 201);
      t.deepEqual(r.body, { tenant: 2, store_id: 2 });
      t.deepEqual(
        (await t.context.f.rows('products')).filter((p) => p.name === 'posted').map((p) => p.store_id),
        [2],
      );
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

    test.serial(`${name}: a stream body pulled after the handler (an async generator) reads under the request's tenant`, async (t) => {
      await t.context.f.reset();
      const [a, b, none] = await Promise.all([
        request(`${url(t)}/pull`, { headers: { 'x-store-id': '1' } }),
        request(`${url(t)}/pull`, { headers: { 'x-store-id': '2' } }),
        request(`${url(t)}/pull`),
      ]);
      t.is(a.text, '1:2|1:2|1:2');
      t.is(b.text, '2:3|2:3|2:3');
      t.is(none.text, 'none:5|none:5|none:5');
    });

    test.serial(`${name}: a handler that throws (sync or async) reaches the error handler`, async (t) => {
      const sync = await request(`${url(t)}/boom`, { headers: { 'x-store-id': '3' } });
      t.deepEqual([sync.status, sync.body.message], [500, 'handler threw']);
      const async = await request(`${url(t)}/boom-async`, { headers: { 'x-store-id': '1' } });
      t.deepEqual([async.status, async.body.message], [500, 'async handler threw']);
      t.is((await request(`${url(t)}/whoami`)).body.tenant, null, 'the next request has none');
    });

    test.serial(`${name}: a keep-alive socket reused across tenants never carries the previous request's tenant`, async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen: Array<[unknown, number]> = [];
      for (const h of ['1', '', '2', '', 'async:3', '1', '']) {
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

    test.serial(`${name}: setCurrentTenant in a later middleware sets this request's tenant only`, async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen: unknown[] = [];
      for (const h of ['1', '', '2', '', '']) {
        seen.push((await request(`${url(t)}/set/whoami`, { agent, headers: h ? { 'x-set-store': h } : {} })).body.tenant);
      }
      agent.destroy();
      t.deepEqual(seen, [1, null, 2, null, null]);
    });

    test.serial(`${name}: setCurrentTenant inside a handler does not reach the next request on the socket`, async (t) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen: unknown[] = [];
      for (const h of ['2', '', '3', '']) {
        const r = await request(`${url(t)}/handler-set`, { agent, headers: h ? { 'x-set-store': h } : {} });
        seen.push([r.body.before, r.body.after]);
      }
      agent.destroy();
      t.deepEqual(seen, [
        [null, 2],
        [null, null],
        [null, 3],
        [null, null],
      ]);
    });

    test.serial(`${name}: strict mode: a request with no tenant is refused before any SQL, one with a tenant runs`, async (t) => {
      const { f } = t.context;
      multitenant(f.sequelize, { ...f.options, strict: true });
      try {
        const refused = await request(`${url(t)}/products`);
        t.deepEqual([refused.status, refused.body.error], [401, 'MissingTenantError']);
        const ok = await request(`${url(t)}/products`, { headers: { 'x-store-id': '1' } });
        t.deepEqual([ok.status, ok.body.tenant], [200, 1]);
        // the resolver's own lookup of the tenant table runs unscoped (as withoutTenant would), also in strict mode
        const looked = await request(`${url(t)}/products`, { headers: { 'x-store-id': 'lookup:B' } });
        t.deepEqual([looked.status, looked.body.tenant, looked.body.rows.length], [200, 2, 3]);
      } finally {
        multitenant(f.sequelize, { ...f.options, strict: false });
      }
    });

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
    });

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
      t.log(`${name}: ${replies.length} requests, ${leaks} rows of another tenant, ${wrongTenant} wrong tenants seen`);
      t.deepEqual({ leaks, wrongTenant, wrongCount }, { leaks: 0, wrongTenant: 0, wrongCount: 0 });
    });
  }
}
