// Jobs carry the tenant of the unit of work that added them, on BullMQ 5 — the peer range is ^5 || ^6, so
// both run the whole suite (helpers/bullmq-suite.ts). BullMQ 5's own types are accepted by the wrappers with
// no cast (the functions below are type-checked by `npm run typecheck`, never called).
import * as bullmq5 from 'bullmq5';
import { tenantFlowProducer, tenantProcessor, tenantQueue } from '../src/hosts/bullmq';
import { bullmqSuite } from './helpers/bullmq-suite';

void (() => {
  const queue: bullmq5.Queue = tenantQueue(new bullmq5.Queue('q'), { required: true });
  const flows: bullmq5.FlowProducer = tenantFlowProducer(new bullmq5.FlowProducer());
  const worker = new bullmq5.Worker(
    'q',
    tenantProcessor(async (job: bullmq5.Job<{ id: string }>) => job.data.id),
  );
  return [queue, flows, worker];
});

// the classes of BullMQ 5 under the suite's BullMQ 6 types: the runtime is what is tested here
bullmqSuite(bullmq5 as unknown as typeof import('bullmq'));
