import { jobPruneFinished } from '../queue/sql/maintenance.js';
import type { MaintenanceTask } from './task.js';

/** The cleaner: deletes finished jobs past the retention period, a batch per pass. */
export const pruneFinished: MaintenanceTask<number> = {
  name: 'prune finished jobs',
  nothing: 0,
  runOnce: ({ db, batchSize, pruneOlderThan }) => (pruneOlderThan ? jobPruneFinished(db, pruneOlderThan, batchSize) : Promise.resolve(0)),
};
