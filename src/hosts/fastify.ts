import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { type Frame, runInFrame } from '../context';
import { assertResolver, enterRequest, type TenantMiddlewareOptions, type TenantResolver } from './resolve';

export type { ResolvedTenant, TenantMiddlewareOptions, TenantResolver } from './resolve';

/** The frame each request runs in (for the hooks Fastify fires from the connection's events). */
const frames = new WeakMap<object, Frame>();

/** Options of `fastifyTenant`. */
export interface FastifyTenantOptions extends TenantMiddlewareOptions {
  /** The request's tenant (sync or async): an instance, an id, an array, or nothing. */
  resolveTenant?: TenantResolver<FastifyRequest>;
}

/**
 * A Fastify plugin (Fastify 5): every request of the instance it is registered on — and of its child
 * contexts, as Fastify's encapsulation goes — runs as a unit of work of its own with the tenant that
 * `resolveTenant(request)` returns, in the hooks after `onRequest` and in the handler. The resolver runs
 * as `withoutTenant` would. With `required`, a request that resolves to no tenant fails with
 * `MissingTenantError`; a throwing or rejecting resolver, or an invalid tenant, fails it too (Fastify's
 * error handler answers). Body parsing, later hooks and the handler continue inside the request's frame
 * (tested with bodies that arrive late, in chunks, on AsyncLocalStorage and on cls-hooked); the
 * `onRequestAbort` and `onTimeout` hooks added after the plugin run in it too.
 * Register it with `fastify-plugin` semantics (it is marked to skip encapsulation) to cover the whole app,
 * or inside a plugin to cover that plugin's routes only.
 * @example
 * import { fastifyTenant } from 'sequelize-multitenant/fastify';
 * await app.register(fastifyTenant, { resolveTenant: (req) => req.headers['x-store-id'] });
 */
export const fastifyTenant: FastifyPluginCallback<FastifyTenantOptions> = function fastifyTenant(fastify, options, done) {
  const resolveTenant = options?.resolveTenant ?? (() => undefined);
  try {
    assertResolver(resolveTenant, 'fastifyTenant');
  } catch (err) {
    done(err as Error);
    return;
  }
  const required = options?.required ?? false;
  // onRequestAbort and onTimeout are fired from the connection's events, outside the request's async
  // context: the hooks added after this plugin (in its context and the ones below) run in the request's frame
  const addHook = fastify.addHook;
  (fastify as unknown as { addHook: (...args: unknown[]) => unknown }).addHook = function addHookInFrame(
    this: unknown,
    ...args: unknown[]
  ) {
    const [name, hook] = args;
    if ((name === 'onRequestAbort' || name === 'onTimeout') && typeof hook === 'function') {
      args[1] = function hookInRequestFrame(this: unknown, request: object, ...rest: unknown[]) {
        return runInFrame(frames.get(request) ?? { tenant: undefined, bypass: false }, () => hook.call(this, request, ...rest));
      };
    }
    return (addHook as (...a: unknown[]) => unknown).apply(this, args);
  };
  fastify.addHook('onRequest', (request, _reply, next) => {
    // the rest of the request (hooks, body parsing, handler) continues from next(): inside the frame
    enterRequest(
      resolveTenant,
      request,
      required,
      'fastifyTenant',
      (frame) => {
        frames.set(request, frame);
        next();
      },
      (err) => next(err as Error),
    );
  });
  done();
};
// fastify-plugin's marks, without depending on it: the hooks reach the routes of the app it is registered on
(fastifyTenant as unknown as Record<symbol | string, unknown>)[Symbol.for('skip-override')] = true;
(fastifyTenant as unknown as Record<symbol | string, unknown>)[Symbol.for('fastify.display-name')] = 'sequelize-multitenant';
