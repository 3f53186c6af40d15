import type { JobRow } from '../jobs/columns.js';
import { jobListLapsed } from '../queue/sql/reads.js';
import { jobExpireLeases } from '../queue/sql/writes.js';
import { isolatingFailures, type MaintenanceTask } from './task.js';

/**
 * The rescuer: a lease that lapsed (a worker that crashed or stopped heartbeating) counts as a failed
 * attempt; the job goes back to the queue with backoff, or to FAILED, and its slot to the next job.
 */
export const expireLeases: MaintenanceTask<JobRow[]> = {
  name: 'expire leases',
  nothing: [],
  runOnce: ({ db, settings, batchSize, skipped }) =>
    isolatingFailures(
      () => jobExpireLeases(db, { limit: batchSize }, settings),
      async () => (await jobListLapsed(db, batchSize)).map((row) => row.id),
      (ids) => jobExpireLeases(db, { ids }, settings),
      skipped,
    ),
};
