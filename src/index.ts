export type { ClsNamespace } from './context';
export {
  getCurrentTenant,
  getCurrentTenantId,
  setCurrentTenant,
  unsetCurrentTenant,
  withoutTenant,
  withTenant,
} from './context';
export type { RefusalDetails } from './errors';
export { InvalidTenantError, MissingTenantError, MultitenantError, TenantMismatchError } from './errors';
export type { ResolvedTenant, TenantMiddlewareOptions } from './express';
export { tenantMiddleware } from './express';
export type { MultitenantOptions } from './plugin';
export { multitenant } from './plugin';
export type { TenantId, TenantInput } from './tenant';
