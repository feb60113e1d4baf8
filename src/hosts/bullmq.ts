import { currentFrame, runInFrame } from '../context';
import { MissingTenantError, MultitenantError } from '../errors';
import { checkOptions, type OptionSpec } from '../options';
import { guarded } from '../scope/scope';
import { assertFitsSomeTenantColumn, normalizeTenant, type TenantId, tenantIdOf } from '../tenant';

/**
 * The key under which a job's options carry the tenant of the unit of work that added it. Options, not
 * data: BullMQ keeps a job's options across retries, `updateData` and fetches by id, and no payload the
 * job's data is built from can forge them.
 */
export const JOB_TENANT_KEY = '__multitenant';

type Encoded = { ids: Array<['n' | 's' | 'b', string]>; many: boolean } | { bypass: true };

/** What a job carries: the tenant (ids typed, bigints kept), an explicit bypass, or nothing. */
function encodeCurrent(): Encoded | undefined {
  const frame = currentFrame();
  if (frame?.bypass) return { bypass: true };
  const tenant = frame?.tenant;
  if (!tenant) return undefined;
  return {
    many: tenant.many,
    ids: tenant.ids.map((id) => [typeof id === 'number' ? 'n' : typeof id === 'bigint' ? 'b' : 's', String(id)]),
  };
}

function decode(value: unknown, operation: string): { tenant?: ReturnType<typeof normalizeTenant>; bypass: boolean } | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value as Partial<{ ids: unknown; many: unknown; bypass: unknown }>;
  if (v.bypass === true) return { bypass: true };
  if (!Array.isArray(v.ids) || v.ids.length === 0) {
    throw new MultitenantError(`the job's ${JOB_TENANT_KEY} is not a tenant this library wrote: ${JSON.stringify(value)}`, { operation });
  }
  const ids = v.ids.map((entry) => {
    const [type, text] = Array.isArray(entry) ? entry : [];
    if (type === 'n') return Number(text);
    if (type === 'b') return BigInt(String(text));
    return text as TenantId;
  });
  return { tenant: normalizeTenant(v.many === true ? ids : ids[0], { operation }), bypass: false };
}

/** The part of a BullMQ queue the wrapper uses. */
export interface QueueLike {
  add(name: string, data: unknown, opts?: unknown): Promise<unknown>;
  addBulk(jobs: Array<{ name: string; data: unknown; opts?: unknown }>): Promise<unknown>;
}
type Opts = Record<string, unknown> | undefined;
/** The part of a BullMQ job the processor wrapper reads. */
export interface JobLike {
  readonly data?: unknown;
  readonly opts?: unknown;
  readonly name?: string;
  readonly id?: string;
}

/** Options of `tenantQueue` and `tenantProcessor`. */
export interface JobTenantOptions {
  /**
   * Jobs must carry a tenant: `add` with no tenant set (outside `withoutTenant`) throws
   * `MissingTenantError`; the processor fails a job that carries none.
   * @default false
   */
  required?: boolean;
}

/** What the queue, flow producer and processor wrappers take. */
const JOB_OPTIONS: OptionSpec = { required: 'boolean' };

/** The job options with the current tenant (or the bypass of `withoutTenant`) under `JOB_TENANT_KEY`. */
function withTenantOf(opts: unknown, required: boolean, operation: string): Opts {
  // a tenant no tenant column can hold ('abc' where they are BIGINT) is refused when the job is added,
  // not when a worker runs it
  const frame = currentFrame();
  if (frame?.tenant && !frame.bypass) assertFitsSomeTenantColumn(frame.tenant, { operation, tenant: tenantIdOf(frame.tenant) });
  const encoded = encodeCurrent();
  const { [JOB_TENANT_KEY]: _given, ...rest } = (opts ?? {}) as Record<string, unknown>;
  if (!encoded) {
    if (required) throw new MissingTenantError('a job of a tenant-required queue is added with no tenant set', { operation });
    // explicitly none: a marker in the caller's options, or in the queue's defaultJobOptions, is not carried
    return { ...rest, [JOB_TENANT_KEY]: null };
  }
  return { ...rest, [JOB_TENANT_KEY]: encoded };
}

/**
 * Makes a BullMQ queue's `add`, `addBulk` and `upsertJobScheduler` stamp each job (a scheduler's template) with the tenant of the unit of work that adds
 * it (`withTenant(t, () => queue.add(...))` carries `t`; inside `withoutTenant` an explicit bypass; with
 * none, nothing — or `MissingTenantError` with `required`). Returns the same queue.
 * @example
 * import { tenantQueue, tenantProcessor } from 'sequelize-multitenant/bullmq';
 * const queue = tenantQueue(new Queue('emails', { connection }));
 * await withTenant(store, () => queue.add('welcome', { userId }));
 */
export function tenantQueue<Q extends QueueLike>(queue: Q, options: JobTenantOptions = {}): Q {
  checkOptions('tenantQueue', options, JOB_OPTIONS, 'the queue was not wrapped');
  const required = options.required ?? false;
  // BullMQ's add goes through addJob (public in JavaScript): the one to wrap when it exists
  const entry: 'add' | 'addJob' = typeof (queue as { addJob?: unknown }).addJob === 'function' ? 'addJob' : 'add';
  const target = queue as unknown as Record<typeof entry, QueueLike['add']>;
  const add = target[entry];
  const addBulk = queue.addBulk;
  target[entry] = function addWithTenant(this: Q, name, data, opts) {
    return guarded(() => add.call(this, name, data, withTenantOf(opts, required, 'queue.add')));
  };
  const scheduler = (queue as { upsertJobScheduler?: (id: string, repeat: unknown, template?: { opts?: unknown }) => Promise<unknown> })
    .upsertJobScheduler;
  if (typeof scheduler === 'function') {
    // the jobs a scheduler makes later carry the tenant of whoever set the scheduler up
    (queue as { upsertJobScheduler?: typeof scheduler }).upsertJobScheduler = function upsertWithTenant(this: Q, id, repeat, template) {
      return guarded(() =>
        scheduler.call(this, id, repeat, { ...template, opts: withTenantOf(template?.opts, required, 'queue.upsertJobScheduler') }),
      );
    };
  }
  queue.addBulk = function addBulkWithTenant(this: Q, jobs) {
    return guarded(() =>
      addBulk.call(
        this,
        jobs.map((job) => ({ ...job, opts: withTenantOf(job.opts, required, 'queue.addBulk') })),
      ),
    );
  };
  return queue;
}

/**
 * Wraps a BullMQ processor (also inside a sandboxed processor's file): each job runs as a unit of work of
 * its own with the tenant its options carry (as
 * `withTenant`), inside `withoutTenant` when it was added there, and with no tenant when it carries none
 * (with `required`: the job fails with `MissingTenantError`). Nothing a job sets (`setCurrentTenant`)
 * reaches the next job, also with concurrency and after a failure; retries run under the same tenant.
 * @example
 * new Worker('emails', tenantProcessor(async (job) => {
 *   await User.findByPk(job.data.userId); // scoped to the tenant that added the job
 * }), { connection, concurrency: 5 });
 */
export function tenantProcessor<J extends JobLike, A extends unknown[], R>(
  processor: (job: J, ...rest: A) => Promise<R> | R,
  options: JobTenantOptions = {},
): (job: J, ...rest: A) => Promise<R> {
  if (typeof processor !== 'function') throw new TypeError('tenantProcessor(processor): processor must be a function');
  checkOptions('tenantProcessor', options, JOB_OPTIONS, 'the processor was not wrapped');
  const required = options.required ?? false;
  return async function processWithTenant(job: J, ...rest: A): Promise<R> {
    const operation = `job ${job?.name ?? ''}${job?.id ? `#${job.id}` : ''}`.trim();
    const carried = decode((job?.opts as Record<string, unknown> | undefined)?.[JOB_TENANT_KEY], operation);
    if (!carried && required) throw new MissingTenantError('the job carries no tenant (a tenant-required worker)', { operation });
    const frame = carried ? { tenant: carried.tenant, bypass: carried.bypass } : { tenant: undefined, bypass: false };
    return runInFrame(frame, () => processor(job, ...rest));
  };
}

/** The tenant a job carries, as `getCurrentTenantId` would give it (undefined for none or a bypass). */
export function jobTenantId(job: JobLike): TenantId | TenantId[] | undefined {
  const carried = decode((job?.opts as Record<string, unknown> | undefined)?.[JOB_TENANT_KEY], 'jobTenantId');
  return carried?.tenant ? tenantIdOf(carried.tenant) : undefined;
}

/** A node of a BullMQ flow (FlowProducer): a job and its children. */
interface FlowNode {
  opts?: unknown;
  children?: FlowNode[];
}
/** The part of a BullMQ FlowProducer the wrapper uses. */
export interface FlowProducerLike {
  add(flow: FlowNode, opts?: unknown): Promise<unknown>;
  addBulk(flows: FlowNode[]): Promise<unknown>;
}

function stampFlow<N extends FlowNode>(node: N, required: boolean, operation: string): N {
  return {
    ...node,
    opts: withTenantOf(node.opts, required, operation),
    ...(node.children ? { children: node.children.map((child) => stampFlow(child, required, operation)) } : {}),
  };
}

/**
 * Makes a BullMQ `FlowProducer`'s `add` and `addBulk` stamp every job of the flow (the parent and all
 * children, at every depth) with the tenant of the unit of work that adds it, as `tenantQueue` does.
 * Returns the same producer.
 * @example
 * const flows = tenantFlowProducer(new FlowProducer({ connection }));
 * await withTenant(store, () => flows.add({ name: 'report', queueName: 'reports', children: [...] }));
 */
export function tenantFlowProducer<F extends FlowProducerLike>(producer: F, options: JobTenantOptions = {}): F {
  checkOptions('tenantFlowProducer', options, JOB_OPTIONS, 'the producer was not wrapped');
  const required = options.required ?? false;
  const add = producer.add;
  const addBulk = producer.addBulk;
  producer.add = function addFlowWithTenant(this: F, flow, opts) {
    return guarded(() => add.call(this, stampFlow(flow, required, 'flowProducer.add'), opts));
  };
  producer.addBulk = function addFlowsWithTenant(this: F, flows) {
    return guarded(() =>
      addBulk.call(
        this,
        flows.map((flow) => stampFlow(flow, required, 'flowProducer.addBulk')),
      ),
    );
  };
  return producer;
}
