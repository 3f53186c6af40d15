import { jobCountsFold } from '../queue/sql/writes.js';
import type { MaintenanceTask } from './task.js';

/** Folds the finished-job count changes the statements appended into job_counts. */
export const foldCounts: MaintenanceTask<number> = {
  name: 'fold job counts',
  nothing: 0,
  runOnce: ({ db }) => jobCountsFold(db),
};
