import type { JobRow } from '../jobs/columns.js';
import { jobExpireDue } from '../queue/sql/cancelRetry.js';
import type { MaintenanceTask } from './task.js';

/**
 * Expiry: QUEUED jobs past their deadline to start (expiresAt) end as EXPIRED, and whatever they held
 * (a slot, gate units) goes to waiting jobs. The claim already skips them; this makes it final.
 */
export const expireJobs: MaintenanceTask<JobRow[]> = {
  name: 'expire jobs past their deadline',
  nothing: [],
  runOnce: ({ db, settings, batchSize }) => jobExpireDue(db, batchSize, settings),
};
