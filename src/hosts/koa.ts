import { type Frame, runInFrame } from '../context';
import { checkOptions } from '../options';
import { assertResolver, MIDDLEWARE_OPTIONS, resolveFrame, type TenantMiddlewareOptions, type TenantResolver } from './resolve';

export type { ResolvedTenant, TenantMiddlewareOptions, TenantResolver } from './resolve';

/** The part of a Koa context the middleware uses (Koa 2 and 3). */
export interface KoaContextLike {
  readonly request: unknown;
  /** A request header (`ctx.get('x-store-id')`): typed so that a resolver reading one needs no annotation. */
  get(field: string): string;
}

/**
 * Koa middleware (Koa 2 and 3): the rest of the request — every later middleware and the response —
 * runs as a unit of work of its own with the tenant `resolveTenant(ctx)` returns — a stream body too, which
 * Koa reads after the middleware chain — (sync or async; an
 * instance, an id, an array, or nothing). The resolver runs as `withoutTenant` would. With `required`,
 * a request that resolves to no tenant fails with `MissingTenantError` (Koa's error handling sees it);
 * a resolver that throws or rejects, or returns an invalid tenant, fails the request the same way.
 * `setCurrentTenant` in a later middleware sets this request's tenant only.
 * @example
 * import { koaTenant } from 'sequelize-multitenant/koa';
 * app.use(koaTenant((ctx) => ctx.get('x-store-id')));
 */
export function koaTenant<Ctx extends KoaContextLike = KoaContextLike>(
  resolveTenant: TenantResolver<Ctx> = () => undefined,
  options: TenantMiddlewareOptions = {},
): (ctx: Ctx, next: () => Promise<unknown>) => Promise<unknown> {
  assertResolver(resolveTenant, 'koaTenant');
  checkOptions('koaTenant', options, MIDDLEWARE_OPTIONS, 'nothing was installed');
  const required = options.required ?? false;
  return async function multitenantKoa(ctx, next) {
    const frame = await resolveFrame(resolveTenant, ctx, required, 'koaTenant');
    const result = await runInFrame(frame, next);
    // Koa pipes a stream body after the middleware chain has settled, outside the request's frame: the
    // stream is pulled (an async generator's next step, a database cursor) in the frame all the same
    const c = ctx as unknown as { body?: unknown };
    const body = c.body;
    if (isWebStream(body)) c.body = bindWebStream(body, frame);
    else if (typeof Response === 'function' && body instanceof Response && body.body) {
      c.body = new Response(bindWebStream(body.body, frame), { status: body.status, statusText: body.statusText, headers: body.headers });
    } else bindStream(body, frame);
    return result;
  };
}

/** Makes every pull of a readable stream (its `_read`) run in `frame`. */
function bindStream(body: unknown, frame: Frame): void {
  const stream = body as { _read?: (...args: unknown[]) => unknown; pipe?: unknown } | undefined;
  if (!stream || typeof stream.pipe !== 'function' || typeof stream._read !== 'function' || BOUND.has(stream)) return;
  BOUND.add(stream);
  const read = stream._read;
  stream._read = function readInFrame(this: unknown, ...args: unknown[]) {
    return runInFrame(frame, () => read.apply(this, args));
  };
}
const BOUND = new WeakSet<object>();

const isWebStream = (body: unknown): body is ReadableStream => typeof ReadableStream === 'function' && body instanceof ReadableStream;

/** A web stream (Koa 3 takes them, and `Response`s) whose every pull runs in `frame`. */
function bindWebStream(stream: ReadableStream, frame: Frame): ReadableStream {
  const reader = stream.getReader();
  return new ReadableStream(
    {
      pull: (controller) =>
        runInFrame(frame, async () => {
          const { value, done } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        }),
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}
