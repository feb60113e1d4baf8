import { AsyncResource } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { runInFrame } from './context';
import { MissingTenantError } from './errors';
import { normalizeTenant, type TenantInput } from './tenant';

/** What a resolver may return: a tenant, nothing (no tenant for this request), or a promise of either. */
export type ResolvedTenant = TenantInput | null | undefined;

/** Options of `tenantMiddleware`. */
export interface TenantMiddlewareOptions {
  /**
   * When the resolver returns `null` or `undefined`: `false` lets the request continue without a tenant
   * (public routes; strict mode then refuses tenant queries), `true` passes a `MissingTenantError` to `next`.
   * @default false
   */
  required?: boolean;
}

type Next = (err?: unknown) => void;

/**
 * Express middleware (Express 4 and 5) that runs the rest of the request as a unit of work of its own,
 * with the tenant that `resolveTenant(req)` returns — async handlers, body parsers placed before or
 * after it, streaming responses, error handlers. `setCurrentTenant` in a later middleware sets the tenant
 * of this request only. The tenant is gone when the request ends; the next request on the same
 * keep-alive connection starts with none. A resolver that throws or rejects, or returns an invalid
 * tenant, reaches `next(err)`. Without a resolver the request starts with no tenant.
 * @example
 * app.use(tenantMiddleware((req) => req.header('x-store-id')));
 * app.use(tenantMiddleware()); // then setCurrentTenant(...) in your auth middleware
 */
export function tenantMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  resolveTenant: (req: Req) => ResolvedTenant | Promise<ResolvedTenant> = () => undefined,
  options: TenantMiddlewareOptions = {},
): (req: Req, res: Res, next: Next) => void {
  if (typeof resolveTenant !== 'function') throw new TypeError('tenantMiddleware(resolveTenant): resolveTenant must be a function');
  const required = options.required ?? false;
  return function multitenantMiddleware(req, _res, next) {
    const proceed = (resolved: ResolvedTenant) => {
      if (resolved === undefined || resolved === null) {
        if (required) return next(new MissingTenantError('the request resolved to no tenant', { operation: 'tenantMiddleware' }));
        return runInFrame({ tenant: undefined, bypass: false }, () => next());
      }
      let tenant: ReturnType<typeof normalizeTenant>;
      try {
        tenant = normalizeTenant(resolved, { operation: 'tenantMiddleware' });
      } catch (err) {
        return next(err);
      }
      runInFrame({ tenant, bypass: false }, () => next());
    };
    let result: ResolvedTenant | Promise<ResolvedTenant>;
    try {
      result = resolveTenant(req);
    } catch (err) {
      return next(err);
    }
    if (result && typeof (result as Promise<ResolvedTenant>).then === 'function') {
      const resume = AsyncResource.bind(proceed);
      (result as Promise<ResolvedTenant>).then(resume, (err: unknown) => next(err ?? new Error('tenant resolver rejected')));
    } else proceed(result as ResolvedTenant);
  };
}
