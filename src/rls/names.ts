// The names row-level security is made of: the policy on each tenant table, and the custom settings it
// reads (session.ts keeps them equal to the current unit of work's tenant).

/** The name of the one policy the library makes on each tenant table. */
export const POLICY_NAME = 'sequelize_multitenant_isolation';
/** The custom setting holding the current tenant(s) as a PostgreSQL text array literal (`{"7","8"}`). */
export const TENANT_SETTING = 'sequelize_multitenant.tenant';
/** The custom setting that is `on` inside `withoutTenant`. */
export const BYPASS_SETTING = 'sequelize_multitenant.bypass';
/**
 * The trigger the library makes on each tenant table (and each of its partitions and inheritance children):
 * `BEFORE TRUNCATE ... FOR EACH STATEMENT`. Row-level security does not apply to TRUNCATE; this trigger
 * makes PostgreSQL refuse one unless the bypass setting is on (inside `withoutTenant`).
 */
export const TRUNCATE_TRIGGER = 'sequelize_multitenant_no_truncate';
/** The trigger function it calls: one in each schema that holds a tenant table, raising SQLSTATE 42501. */
export const TRUNCATE_FUNCTION = 'sequelize_multitenant_refuse_truncate';
/** `pg_trigger.tgtype` of a `BEFORE TRUNCATE ... FOR EACH STATEMENT` trigger (TRUNCATE 32 | BEFORE 2). */
export const TRUNCATE_TRIGGER_TYPE = 34;
