import type { JobRow } from '../jobs/columns.js';
import { userListPromotable } from '../queue/sql/reads.js';
import { jobPromoteWaiting } from '../queue/sql/writes.js';
import { isolatingFailures, type MaintenanceTask } from './task.js';

/**
 * The scheduler: hands free slots to waiting jobs that became due (scheduled, or backing off after a
 * failure) and to any left waiting by a race between a submit and a freed slot.
 */
export const promoteWaiting: MaintenanceTask<JobRow[]> = {
  name: 'promote waiting jobs',
  nothing: [],
  runOnce: ({ db, settings, batchSize, skipped }) =>
    isolatingFailures(
      () => jobPromoteWaiting(db, { limit: batchSize }, settings),
      async () => (await userListPromotable(db, batchSize, settings)).map((row) => row.userId),
      (userIds) => jobPromoteWaiting(db, { userIds }, settings),
      skipped,
    ),
};
