/// <reference types="node" preserve="true" />
// The Node.js types (node:async_hooks, node:http) for applications whose tsconfig lists no `types` (TypeScript 7 loads none by default).
import { AsyncResource } from 'node:async_hooks';
import { type Frame, runInFrame } from '../context';
import { MissingTenantError } from '../errors';
import type { OptionSpec } from '../options';
import { assertFitsSomeTenantColumn, normalizeTenant, type TenantInput } from '../tenant';

/**
 * What a resolver may return: a tenant, nothing (no tenant for this request), or a promise of either.
 * `''` and a string of only whitespace (a missing header as Koa's `ctx.get()` reads it) are nothing too.
 */
export type ResolvedTenant = TenantInput | null | undefined;

/** Options shared by every host integration (Express, Fastify, Koa, NestJS). */
export interface TenantMiddlewareOptions {
  /**
   * When the resolver returns nothing (`null`, `undefined`, `''` or only whitespace): `false` lets the request continue without a tenant
   * (public routes; strict mode then refuses tenant queries), `true` fails it with a `MissingTenantError`.
   * @default false
   */
  required?: boolean;
}

/** A request's resolver: sync or async, a tenant, an instance, an id, an array, or nothing. */
export type TenantResolver<Req> = (req: Req) => ResolvedTenant | Promise<ResolvedTenant>;

/** What every host's middleware takes beside its resolver. */
export const MIDDLEWARE_OPTIONS: OptionSpec = { required: 'boolean' };

export function assertResolver(resolveTenant: unknown, where: string): void {
  if (typeof resolveTenant !== 'function') throw new TypeError(`${where}(resolveTenant): resolveTenant must be a function`);
}

/** The frame a request runs in, from what its resolver returned (throws InvalidTenantError / MissingTenantError). */
export function frameOf(resolved: ResolvedTenant, required: boolean, operation: string): Frame {
  if (resolved === undefined || resolved === null || (typeof resolved === 'string' && resolved.trim() === '')) {
    // 401: the request did not say whose data it is (its credential, header or host name)
    if (required) throw new MissingTenantError('the request resolved to no tenant', { operation, status: 401 });
    return { tenant: undefined, bypass: false };
  }
  const tenant = normalizeTenant(resolved, { operation, status: 400 });
  // a tenant no tenant column can hold ('abc' where they are BIGINT) is refused here, not at the first query
  assertFitsSomeTenantColumn(tenant, { operation, value: resolved });
  return { tenant, bypass: false };
}

/**
 * Resolves a request's frame. The resolver runs as `withoutTenant` would run it: its own lookup (the
 * account by subdomain, the membership of a user) works in strict mode and under row-level security,
 * and `setCurrentTenant` inside it reaches nothing else. Sync resolvers answer synchronously (no promise:
 * one microtask less per request); a rejected or throwing resolver, or an invalid tenant, becomes the
 * error.
 */
export function resolveFrame<Req>(
  resolveTenant: TenantResolver<Req>,
  req: Req,
  required: boolean,
  operation: string,
): Frame | Promise<Frame> {
  const result = runInFrame({ tenant: undefined, bypass: true }, () => resolveTenant(req));
  if (result && typeof (result as Promise<ResolvedTenant>).then === 'function') {
    return (result as Promise<ResolvedTenant>).then(
      (resolved) => frameOf(resolved, required, operation),
      (err: unknown) => {
        throw err ?? new Error('tenant resolver rejected');
      },
    );
  }
  return frameOf(result as ResolvedTenant, required, operation);
}

/**
 * A callback host's request: resolves its frame and runs `proceed` inside it — at once for a sync
 * resolver; for an async one, in the async context the request came in (not the resolver's). A
 * refusal (throwing or rejecting resolver, invalid or missing tenant) goes to `fail`.
 */
export function enterRequest<Req>(
  resolveTenant: TenantResolver<Req>,
  req: Req,
  required: boolean,
  operation: string,
  proceed: (frame: Frame) => void,
  fail: (err: unknown) => void,
): void {
  let frame: Frame | Promise<Frame>;
  try {
    frame = resolveFrame(resolveTenant, req, required, operation);
  } catch (err) {
    fail(err);
    return;
  }
  const enter = (f: Frame) => runInFrame(f, () => proceed(f));
  if (frame instanceof Promise) frame.then(AsyncResource.bind(enter), fail);
  else enter(frame);
}
