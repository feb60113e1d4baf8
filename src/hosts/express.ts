/// <reference types="node" preserve="true" />
// The Node.js types (node:async_hooks, node:http) for applications whose tsconfig lists no `types` (TypeScript 7 loads none by default).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkOptions } from '../options';
import { assertResolver, enterRequest, MIDDLEWARE_OPTIONS, type TenantMiddlewareOptions, type TenantResolver } from './resolve';

export type { ResolvedTenant, TenantMiddlewareOptions, TenantResolver } from './resolve';

type Next = (err?: unknown) => void;

/**
 * Express middleware (Express 4 and 5) that runs the rest of the request as a unit of work of its own,
 * with the tenant that `resolveTenant(req)` returns — async handlers, body parsers placed before or
 * after it, streaming responses, error handlers. The resolver itself runs as `withoutTenant` would (its
 * lookup works in strict mode and under row-level security). `setCurrentTenant` in a later middleware
 * sets the tenant of this request only. The tenant is gone when the request ends; the next request on
 * the same keep-alive connection starts with none. A resolver that throws or rejects, or returns an
 * invalid tenant, reaches `next(err)`. Without a resolver the request starts with no tenant.
 * @example
 * app.use(tenantMiddleware((req) => req.header('x-store-id')));
 * app.use(tenantMiddleware()); // then setCurrentTenant(...) in your auth middleware
 */
export function tenantMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  resolveTenant: TenantResolver<Req> = () => undefined,
  options: TenantMiddlewareOptions = {},
): (req: Req, res: Res, next: Next) => void {
  assertResolver(resolveTenant, 'tenantMiddleware');
  checkOptions('tenantMiddleware', options, MIDDLEWARE_OPTIONS, 'nothing was installed');
  const required = options.required ?? false;
  return function multitenantMiddleware(req, _res, next) {
    enterRequest(resolveTenant, req, required, 'tenantMiddleware', () => next(), next);
  };
}
