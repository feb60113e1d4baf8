import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { type Frame, runInFrame } from '../context';
import { checkOptions } from '../options';
import { assertResolver, enterRequest, MIDDLEWARE_OPTIONS, type TenantMiddlewareOptions, type TenantResolver } from './resolve';

export type { ResolvedTenant, TenantMiddlewareOptions, TenantResolver } from './resolve';

/** The frame each request runs in (for the hooks Fastify fires from the connection's events). */
const frames = new WeakMap<object, Frame>();

/**
 * The hooks of a request. Fastify fires some from the socket's events (onResponse after the response
 * is written, onRequestAbort, onTimeout), outside the request's async context: under keep-alive and
 * pipelining that is another request's. Each one added after the plugin runs in its request's frame.
 */
const REQUEST_HOOKS = new Set([
  'onRequest',
  'preParsing',
  'preValidation',
  'preHandler',
  'preSerialization',
  'onSend',
  'onResponse',
  'onError',
  'onTimeout',
  'onRequestAbort',
]);

/**
 * The events Fastify fires hooks from, emitted in the request's frame whatever order the hooks were
 * added in (a plugin registered without `await` loads after the hooks written below it): the response's
 * `finish` (onResponse), the request's `close` (onRequestAbort); a socket's `timeout` (onTimeout) in the
 * frame of the request Fastify records as the socket's current one.
 */
function emitInFrame(
  emitter: { emit(event: string | symbol, ...args: unknown[]): boolean },
  frameOf: (self: unknown) => Frame | undefined,
  only?: string,
): void {
  const emit = emitter.emit;
  emitter.emit = function emitInRequestFrame(this: unknown, event: string | symbol, ...args: unknown[]) {
    const frame = only === undefined || event === only ? frameOf(this) : undefined;
    return frame ? runInFrame(frame, () => emit.call(this, event, ...args)) : emit.call(this, event, ...args);
  };
}
const socketsInFrame = new WeakSet<object>();
const socketFrame = (socket: unknown) => {
  const current = (socket as { _meta?: { request?: object } })._meta?.request;
  return current ? frames.get(current) : undefined;
};

/** `hook`, run in the frame of the request it is called with (its arity kept: Fastify reads it). */
function inRequestFrame(hook: (this: unknown, request: object, ...rest: unknown[]) => unknown): typeof hook {
  const wrapped = function hookInRequestFrame(this: unknown, request: object, ...rest: unknown[]) {
    const frame = frames.get(request);
    return frame ? runInFrame(frame, () => hook.call(this, request, ...rest)) : hook.call(this, request, ...rest);
  };
  Object.defineProperty(wrapped, 'length', { value: hook.length });
  return wrapped;
}

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
 * (tested with bodies that arrive late, in chunks, on AsyncLocalStorage and on cls-hooked); every request
 * hook added after the plugin, and every hook in a route's options, runs in its own request's frame —
 * also `onResponse`, `onRequestAbort` and `onTimeout`, which Fastify fires from the socket's events.
 * Register it with `fastify-plugin` semantics (it is marked to skip encapsulation) to cover the whole app,
 * or inside a plugin to cover that plugin's routes only.
 * @example
 * import { fastifyTenant } from 'sequelize-multitenant/fastify';
 * await app.register(fastifyTenant, { resolveTenant: (req) => req.headers['x-store-id'] });
 */
export const fastifyTenant: FastifyPluginCallback<FastifyTenantOptions> = function fastifyTenant(fastify, options, done) {
  const resolveTenant = options?.resolveTenant ?? (() => undefined);
  try {
    // Fastify passes its own register options (prefix, logLevel, logSerializers) along with the plugin's
    checkOptions('fastifyTenant', options, { ...MIDDLEWARE_OPTIONS, resolveTenant: 'function' }, 'the plugin was not registered', {
      allowed: ['prefix', 'logLevel', 'logSerializers'],
    });
    assertResolver(resolveTenant, 'fastifyTenant');
  } catch (err) {
    done(err as Error);
    return;
  }
  const required = options?.required ?? false;
  // The request hooks added after this plugin (in its context and the ones below) and those given in a
  // route's options run in the request's frame, wherever Fastify fires them from.
  type Hook = Parameters<typeof inRequestFrame>[0];
  const addHook = fastify.addHook;
  (fastify as unknown as { addHook: (...args: unknown[]) => unknown }).addHook = function addHookInFrame(
    this: unknown,
    ...args: unknown[]
  ) {
    const [name, hook] = args;
    if (REQUEST_HOOKS.has(name as string) && typeof hook === 'function') args[1] = inRequestFrame(hook as Hook);
    return (addHook as (...a: unknown[]) => unknown).apply(this, args);
  };
  fastify.addHook('onRoute', (route) => {
    const hooks = route as unknown as Record<string, unknown>;
    for (const name of REQUEST_HOOKS) {
      const given = hooks[name];
      if (typeof given === 'function') hooks[name] = inRequestFrame(given as Hook);
      else if (Array.isArray(given)) hooks[name] = given.map((h) => (typeof h === 'function' ? inRequestFrame(h as Hook) : h));
    }
  });
  fastify.addHook('onRequest', (request, reply, next) => {
    // the rest of the request (hooks, body parsing, handler) continues from next(): inside the frame
    enterRequest(
      resolveTenant,
      request,
      required,
      'fastifyTenant',
      (frame) => {
        frames.set(request, frame);
        emitInFrame(reply.raw as never, () => frame);
        emitInFrame(request.raw as never, () => frame);
        const socket = request.raw.socket;
        if (socket && !socketsInFrame.has(socket)) {
          socketsInFrame.add(socket);
          // (its timeout only: the socket's other events belong to whichever request comes next)
          emitInFrame(socket as never, socketFrame, 'timeout');
        }
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
