import { runInFrame } from '../context';
import { assertResolver, resolveFrame, type TenantMiddlewareOptions, type TenantResolver } from './resolve';

export type { ResolvedTenant, TenantMiddlewareOptions, TenantResolver } from './resolve';

/** The part of a Koa context the middleware uses (Koa 2 and 3). */
export interface KoaContextLike {
  readonly request: unknown;
}

/**
 * Koa middleware (Koa 2 and 3): the rest of the request — every later middleware and the response —
 * runs as a unit of work of its own with the tenant `resolveTenant(ctx)` returns (sync or async; an
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
  const required = options.required ?? false;
  return async function multitenantKoa(ctx, next) {
    const frame = await resolveFrame(resolveTenant, ctx, required, 'koaTenant');
    return runInFrame(frame, next);
  };
}
