export type { MigrationOptions, TenantForeignKeyOptions } from './citus/migrations';
export { addTenantForeignKey, createDistributedTable, createReferenceTable, undistributeTable } from './citus/migrations';
export { routerOnly } from './citus/router-only';
export type { IsolatedTenant, IsolateTenantOptions, TenantStat, TenantStatsMeasure, TenantStatsOptions } from './citus/tenants';
export { isolateTenant, tenantStats } from './citus/tenants';
export type { ClsNamespace } from './context';
export {
  bindTenant,
  getCurrentTenant,
  getCurrentTenantId,
  setCurrentTenant,
  unsetCurrentTenant,
  withoutTenant,
  withTenant,
  withTenantContext,
} from './context';
export type { RefusalDetails } from './errors';
export {
  InvalidTenantError,
  LifecycleInterruptedError,
  MissingTenantError,
  MultitenantError,
  TenantMismatchError,
  UnsafeConditionError,
  UnscopedQueryError,
} from './errors';
export type { ResolvedTenant, TenantMiddlewareOptions } from './hosts/express';
export { tenantMiddleware } from './hosts/express';
export type { CopyTenantOptions, CopyTenantResult } from './lifecycle/copy';
export { copyTenant } from './lifecycle/copy';
export type { DeleteTenantOptions, DeleteTenantResult } from './lifecycle/delete';
export { deleteTenant } from './lifecycle/delete';
export type { ExportTenantOptions, LifecycleProgress, TenantExportTable, TenantManifest } from './lifecycle/export';
export { exportTenant } from './lifecycle/export';
export type { ImportTenantOptions } from './lifecycle/import';
export { importTenant } from './lifecycle/import';
export { multitenant } from './plugin';
export type { RowLevelSecurityOptions } from './rls/policy';
export { disableRowLevelSecurity, enableRowLevelSecurity } from './rls/policy';
export type { TableName } from './schema/sql';
export type { AuditMode, MultitenantOptions, NoticeHandler } from './state';
export type { TenantId, TenantInput } from './tenant';
export type { TenantSpan, TenantSpanProcessor, TenantSpanProcessorOptions } from './visibility';
export { tenantSpanProcessor } from './visibility';
