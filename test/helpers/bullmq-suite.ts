// The job-queue suite, run on each BullMQ release the peer range names (test/jobs-bullmq.test.ts: 6,
// test/jobs-bullmq5.test.ts: 5): jobs carry the tenant of the unit of work that added them
// (sequelize-multitenant/bullmq), on a real queue and worker over the Redis at 127.0.0.1:6379, against the
// fixture database.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import type { Job, Queue } from 'bullmq';
import { jobTenantId, tenantFlowProducer, tenantProcessor, tenantQueue } from '../../src/hosts/bullmq';
import { getCurrentTenantId, InvalidTenantError, MissingTenantError, setCurrentTenant, withoutTenant, withTenant } from '../../src/index';
import { onCitus } from './db';
import { createFixture, type Fixture } from './fixture';

/** Registers the suite on `bullmq`, the module of one BullMQ release (its classes; the types are BullMQ 6's). */
export function bullmqSuite(bullmq: typeof import('bullmq')): void {
  const { FlowProducer, Queue, Worker } = bullmq;
  const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };
  interface Ctx {
    f: Fixture;
  }
  /** Redis answers? (CI starts it; elsewhere these tests are reported as skipped without one.) */
  const redisAnswers =
    spawnSync(process.execPath, [
      '-e',
      "const s=require('net').connect(6379,'127.0.0.1',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(1),1000)",
    ]).status === 0;
  const test = (redisAnswers || process.env.CI ? anyTest.serial : anyTest.skip) as unknown as TestFn<Ctx>['serial'] &
    Pick<TestFn<Ctx>, 'before' | 'after'>;
  if (!redisAnswers && !process.env.CI) process.stderr.write('[jobs-bullmq] no Redis at 127.0.0.1:6379: the job-queue tests are skipped\n');

  anyTest.before(async (t) => {
    if (redisAnswers || process.env.CI) (t.context as Ctx) = { f: await createFixture() };
  });
  anyTest.after.always(async (t) => {
    await (t.context as Ctx | undefined)?.f?.close();
  });

  /** A queue and a worker of their own for one test; `process` answers what the job saw. */
  async function harness<R>(
    process: (job: Job) => Promise<R>,
    options: { concurrency?: number; required?: boolean } = {},
  ): Promise<{ queue: Queue; results: Map<string, R | Error>; done: (n: number) => Promise<void>; close: () => Promise<void> }> {
    const name = `smt-${randomBytes(4).toString('hex')}`;
    const queue = tenantQueue(new Queue(name, { connection }), { required: options.required });
    const results = new Map<string, R | Error>();
    const worker = new Worker(name, tenantProcessor(process, { required: options.required }), {
      connection,
      concurrency: options.concurrency ?? 1,
    });
    // keyed by data.key (a job whose data updateData replaced is read back by id instead)
    const keyOf = (job: Job) => String((job.data as { key?: unknown } | null)?.key ?? `id:${job.id}`);
    worker.on('completed', (job, value) => results.set(keyOf(job), value as R));
    worker.on('failed', (job, err) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) results.set(keyOf(job), err);
    });
    await worker.waitUntilReady();
    const done = async (n: number) => {
      // polled until every job has ended (up to 2 minutes: a loaded machine runs retries late), not timed
      for (let i = 0; i < 4800 && results.size < n; i++) await new Promise((r) => setTimeout(r, 25));
    };
    return {
      queue,
      results,
      done,
      close: async () => {
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
      },
    };
  }

  test('jobs of three tenants, none, several and withoutTenant, interleaved on a worker of concurrency 5: each saw its own', async (t) => {
    const { f } = t.context;
    await f.reset();
    const h = await harness(
      async (job) => {
        await new Promise((r) => setTimeout(r, (Number(job.data.key) * 7) % 11));
        const rows = await f.Product.findAll({ attributes: ['store_id'] });
        return { tenant: getCurrentTenantId() ?? null, stores: [...new Set(rows.map((r) => r.get('store_id') as number))].sort() };
      },
      { concurrency: 5 },
    );
    try {
      const kinds = [1, 2, 3, 'none', 'bypass', 'both'] as const;
      const sent: Array<{ key: number; kind: (typeof kinds)[number] }> = [];
      await Promise.all(
        Array.from({ length: 90 }, (_, key) => {
          const kind = kinds[key % kinds.length] as (typeof kinds)[number];
          sent.push({ key, kind });
          const add = () => h.queue.add('read', { key });
          if (kind === 'none') return add();
          if (kind === 'bypass') return withoutTenant(add);
          return withTenant(kind === 'both' ? [1, 2] : kind, add);
        }),
      );
      await h.done(90);
      const expected = (kind: (typeof kinds)[number]) =>
        kind === 'none' || kind === 'bypass'
          ? { tenant: null, stores: [1, 2] }
          : kind === 'both'
            ? { tenant: [1, 2], stores: [1, 2] }
            : { tenant: kind, stores: kind === 3 ? [] : [kind] };
      const wrong = sent.filter(({ key, kind }) => JSON.stringify(h.results.get(String(key))) !== JSON.stringify(expected(kind)));
      t.is(h.results.size, 90);
      t.deepEqual(wrong, []);
      t.log(`90 jobs, concurrency 5, 6 kinds interleaved: ${wrong.length} saw another tenant`);
    } finally {
      await h.close();
    }
  });

  test('a create in a job is stamped with the tenant that added it; retries run under the same tenant', async (t) => {
    const { f } = t.context;
    await f.reset();
    const h = await harness(async (job) => {
      if (job.attemptsMade < 2) throw new Error(`attempt ${job.attemptsMade + 1} fails`);
      const made = await f.Product.create({ name: `job-${job.data.key}` });
      return { tenant: getCurrentTenantId(), store_id: made.get('store_id'), attempt: job.attemptsMade + 1 };
    });
    try {
      await withTenant(2, () => h.queue.add('create', { key: 'a' }, { attempts: 3 }));
      await h.done(1);
      t.deepEqual(h.results.get('a'), { tenant: 2, store_id: 2, attempt: 3 });
      t.deepEqual(
        (await f.rows('products')).filter((p) => p.name === 'job-a').map((p) => p.store_id),
        [2],
      );
    } finally {
      await h.close();
    }
  });

  test('a job that sets a tenant or fails leaks nothing into the next job', async (t) => {
    const h = await harness(async (job) => {
      const before = getCurrentTenantId() ?? null;
      if (job.data.set) setCurrentTenant(job.data.set);
      if (job.data.fail) throw new Error('job failed');
      return before;
    });
    try {
      await withTenant(1, () => h.queue.add('a', { key: 'a', set: 3, fail: true }));
      await h.queue.add('b', { key: 'b' });
      await withTenant(2, () => h.queue.add('c', { key: 'c', set: 3 }));
      await h.queue.add('d', { key: 'd' });
      await h.done(4);
      t.is((h.results.get('a') as Error | undefined)?.message, 'job failed');
      t.deepEqual([h.results.get('b'), h.results.get('c'), h.results.get('d')], [null, 2, null]);
    } finally {
      await h.close();
    }
  });

  test('a tenant-required queue refuses a job with no tenant (nothing added); a required worker fails one', async (t) => {
    const h = await harness(async () => getCurrentTenantId(), { required: true });
    try {
      await t.throwsAsync(() => h.queue.add('x', { key: 'x' }), { instanceOf: MissingTenantError });
      await t.throwsAsync(() => h.queue.addBulk([{ name: 'y', data: { key: 'y' } }]), { instanceOf: MissingTenantError });
      // a tenant no tenant column of the process can hold: refused when added, not in the worker
      const invalid = await t.throwsAsync(() => withTenant('abc', () => h.queue.add('w', { key: 'w' })), {
        instanceOf: InvalidTenantError,
      });
      t.regex(invalid?.message ?? '', /tenant abc fits no tenant column/);
      t.is(await h.queue.count(), 0);
      await withoutTenant(() => h.queue.add('bypass', { key: 'bypass' })); // explicit: allowed
      await withTenant('7', () => h.queue.addBulk([{ name: 'z', data: { key: 'z' } }]));
      // a job put on the queue around the wrapper (another, unwrapped Queue; no marker): the required worker refuses it
      const around = new Queue(h.queue.name, { connection });
      await around.add('raw', { key: 'raw' });
      await around.close();
      await h.done(3);
      t.deepEqual([h.results.get('bypass'), h.results.get('z')], [undefined, '7']);
      t.true(h.results.get('raw') instanceof MissingTenantError);
    } finally {
      await h.close();
    }
  });

  test('tenant values keep their type through Redis (bigint, string); a forged marker with no tenant is dropped', async (t) => {
    // (a job's return value travels as JSON: the bigint is shown by its type and text)
    const h = await harness(async (job) => {
      const id = getCurrentTenantId();
      const carried = jobTenantId(job);
      return { id: id === undefined ? null : String(id), type: typeof id, carried: carried === undefined ? null : String(carried) };
    });
    try {
      // (a bigint past 2^53 where a BIGINT tenant column holds it; on Citus the fixture's tenant columns are
      // INTEGER, which refuses it at add: a small bigint there)
      const big = onCitus ? 7n : 9007199254740993n;
      await withTenant(big, () => h.queue.add('big', { key: 'big' }));
      // (a string a tenant column of this process holds: its UUID column)
      await withTenant('6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c', () => h.queue.add('text', { key: 'text' }));
      await h.queue.add('forged', { key: 'forged', __multitenant: { bypass: true } }); // in the data: not read
      await h.queue.add('forged2', { key: 'forged2' }, { __multitenant: { ids: [['n', '1']], many: false } } as never); // dropped
      await h.done(4);
      t.deepEqual(h.results.get('big'), { id: String(big), type: 'bigint', carried: String(big) });
      t.deepEqual(h.results.get('text'), {
        id: '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c',
        type: 'string',
        carried: '6f1c2a9e-1b7a-4c55-9a53-0d1e2f3a4b5c',
      });
      t.deepEqual(h.results.get('forged'), { id: null, type: 'undefined', carried: null });
      t.deepEqual(h.results.get('forged2'), { id: null, type: 'undefined', carried: null });
    } finally {
      await h.close();
    }
  });

  // ---- what the review of the hosts found

  test('a retry after updateData() — an object, a string, null, on the job fetched by id — runs under the same tenant', async (t) => {
    const { f } = t.context;
    await f.reset();
    const h = await harness(async (job) => {
      if (job.attemptsMade === 0) {
        const how = (job.data as { how: string }).how;
        if (how === 'object') await job.updateData({ key: 'object', step: 'half-done' });
        else if (how === 'string') await job.updateData('step-2');
        else if (how === 'null') await job.updateData(null);
        else await (await h.queue.getJob(job.id as string))?.updateData({ step: 2 });
        throw new Error('transient');
      }
      return { tenant: getCurrentTenantId() ?? null, count: await f.Product.count() };
    });
    try {
      const hows = ['object', 'string', 'null', 'byId'];
      // the results are keyed by data.key: the job's id is the key where updateData replaced the data
      await withTenant(2, () => Promise.all(hows.map((how) => h.queue.add('import', { key: how, how }, { attempts: 2, jobId: how }))));
      const byId = new Map<string, unknown>();
      for (let i = 0; i < 4800 && byId.size < hows.length; i++) {
        for (const how of hows) {
          const job = await h.queue.getJob(how);
          if (job && (await job.isCompleted())) byId.set(how, job.returnvalue);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      t.deepEqual(
        hows.map((how) => byId.get(how)),
        hows.map(() => ({ tenant: 2, count: 3 })),
      );
    } finally {
      await h.close();
    }
  });

  test('job schedulers and flows carry the tenant of who set them up; required refuses them with none', async (t) => {
    const { f } = t.context;
    await f.reset();
    const h = await harness(async () => ({ tenant: getCurrentTenantId() ?? null, count: await f.Product.count() }), { required: true });
    const flows = tenantFlowProducer(new FlowProducer({ connection }), { required: true });
    try {
      await t.throwsAsync(() => h.queue.upsertJobScheduler('no-tenant', { every: 60_000 }, { name: 'x', data: { key: 'x' } }), {
        instanceOf: MissingTenantError,
      });
      await t.throwsAsync(() => flows.add({ name: 'f0', queueName: h.queue.name, data: { key: 'f0' } }), {
        instanceOf: MissingTenantError,
      });
      await withTenant(1, () => h.queue.upsertJobScheduler('s1', { every: 60_000 }, { name: 'sched', data: { key: 'sched' } }));
      await withTenant(2, () =>
        flows.add({
          name: 'parent',
          queueName: h.queue.name,
          data: { key: 'parent' },
          children: [
            {
              name: 'child',
              queueName: h.queue.name,
              data: { key: 'child' },
              children: [{ name: 'grandchild', queueName: h.queue.name, data: { key: 'grandchild' } }],
            },
          ],
        }),
      );
      await h.done(4);
      t.deepEqual(
        ['sched', 'parent', 'child', 'grandchild'].map((k) => h.results.get(k)),
        [
          { tenant: 1, count: 2 },
          { tenant: 2, count: 3 },
          { tenant: 2, count: 3 },
          { tenant: 2, count: 3 },
        ],
      );
    } finally {
      await h.queue.removeJobScheduler('s1').catch(() => undefined);
      await flows.close();
      await h.close();
    }
  });

  test('a marker in the queue’s defaultJobOptions or a flow’s queue options is not carried; addJob is covered too', async (t) => {
    const { f } = t.context;
    await f.reset();
    const forged = { __multitenant: { ids: [['n', '1']], many: false } };
    const h = await harness(async () => ({ tenant: getCurrentTenantId() ?? null }));
    const defaults = tenantQueue(new Queue(h.queue.name, { connection, defaultJobOptions: forged as never }), { required: false });
    const flows = tenantFlowProducer(new FlowProducer({ connection }));
    try {
      await defaults.add('d', { key: 'd' });
      await flows.add(
        { name: 'fl', queueName: h.queue.name, data: { key: 'fl' } },
        {
          queuesOptions: { [h.queue.name]: { defaultJobOptions: forged as never } },
        },
      );
      await withTenant(2, () =>
        (h.queue as unknown as { addJob(n: string, d: unknown, o?: unknown): Promise<unknown> }).addJob('aj', { key: 'aj' }),
      );
      await h.done(3);
      t.deepEqual(
        ['d', 'fl', 'aj'].map((k) => h.results.get(k)),
        [{ tenant: null }, { tenant: null }, { tenant: 2 }],
      );
      const required = tenantQueue(new Queue(`${h.queue.name}-r`, { connection }), { required: true });
      await t.throwsAsync(() => (required as unknown as { addJob(n: string, d: unknown, o?: unknown): Promise<unknown> }).addJob('x', {}), {
        instanceOf: MissingTenantError,
      });
      await required.obliterate({ force: true });
      await required.close();
    } finally {
      await defaults.close();
      await flows.close();
      await h.close();
    }
  });
}
