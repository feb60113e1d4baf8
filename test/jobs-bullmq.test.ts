// Jobs carry the tenant of the unit of work that added them, on BullMQ 6 (the suite: helpers/bullmq-suite.ts).
import * as bullmq from 'bullmq';
import { bullmqSuite } from './helpers/bullmq-suite';

bullmqSuite(bullmq);
