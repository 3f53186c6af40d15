import type { JobRow } from '../jobs/columns.js';
import { jobExpireDue, jobListPastDeadline } from '../queue/sql/cancelRetry.js';
import { isolatingFailures, type MaintenanceTask } from './task.js';

/**
 * Expiry: QUEUED jobs past their deadline to start (expiresAt) end as EXPIRED, and whatever they held
 * (a slot, gate units) goes to waiting jobs. The claim already skips them; this makes it final. A row
 * whose change fails (a slot row that breaks its check, say) is skipped and reported: as one batch,
 * it failed every pass, and no job of anyone expired.
 */
export const expireJobs: MaintenanceTask<JobRow[]> = {
  name: 'expire jobs past their deadline',
  nothing: [],
  runOnce: ({ db, settings, batchSize, skipped }) =>
    isolatingFailures(
      () => jobExpireDue(db, { limit: batchSize }, settings),
      async () => (await jobListPastDeadline(db, batchSize)).map((row) => row.id),
      (ids) => jobExpireDue(db, { ids }, settings),
      skipped,
    ),
};
