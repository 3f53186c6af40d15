import { settleUnsettled } from '../queue/flows.js';
import type { MaintenanceTask } from './task.js';

/**
 * Settles the dependents of finished jobs that the finishing process did not settle: it stopped in
 * between, or the job ended in maintenance itself (lease expiry, expiry). Runs before promotion, so
 * that what it releases is admitted in the same pass, and before pruning, which keeps such jobs.
 */
export const settleDependencies: MaintenanceTask<number> = {
  name: 'settle dependencies',
  nothing: 0,
  runOnce: ({ db, inTransaction, batchSize, settings }) => settleUnsettled(db, inTransaction, batchSize, settings),
};
