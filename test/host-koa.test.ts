// koaTenant on Koa 3 and Koa 2, over real HTTP: the hostile cases of every host (host-suite.ts).
import anyTest, { type TestFn } from 'ava';
import { type HostCtx, hostSuite } from './helpers/host-suite';
import { koaHost } from './helpers/hosts/koa';
import { request } from './helpers/http';

const test = anyTest as TestFn<HostCtx>;
hostSuite(test, [koaHost('koa 3', require('koa')), koaHost('koa 2', require('koa2'))]);

for (const name of ['koa 3']) {
  test.serial(
    `${name}: a web ReadableStream or a Response body, pulled by Koa after the chain, reads under the request's tenant`,
    async (t) => {
      await t.context.f.reset();
      const url = t.context.started[name]?.url as string;
      for (const path of ['/web', '/web-response']) {
        const [a, none] = await Promise.all([request(`${url}${path}`, { headers: { 'x-store-id': '2' } }), request(`${url}${path}`)]);
        t.is(a.text, '2:3|2:3|2:3', path);
        t.is(none.text, 'none:5|none:5|none:5', path);
      }
    },
  );
}
