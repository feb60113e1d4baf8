// The names row-level security is made of: the policy on each tenant table, and the custom settings it
// reads (session.ts keeps them equal to the current unit of work's tenant).

/** The name of the one policy the library makes on each tenant table. */
export const POLICY_NAME = 'sequelize_multitenant_isolation';
/** The custom setting holding the current tenant(s) as a PostgreSQL text array literal (`{"7","8"}`). */
export const TENANT_SETTING = 'sequelize_multitenant.tenant';
/** The custom setting that is `on` inside `withoutTenant`. */
export const BYPASS_SETTING = 'sequelize_multitenant.bypass';
