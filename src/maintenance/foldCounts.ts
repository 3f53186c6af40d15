import { jobCountsFold } from '../queue/sql/maintenance.js';
import { jobLiveCountsFold } from '../queue/sql/liveCounts.js';
import { jobThroughputFold, jobThroughputPrune, THROUGHPUT_LIMITS } from '../queue/sql/throughput.js';
import type { MaintenanceTask } from './task.js';

const DAY_MS = 86_400_000;

/**
 * Folds the finished-job count changes the statements appended into job_counts and, by the minute each
 * job finished, into job_throughput; then prunes throughput buckets past their retention. Both folds
 * read one snapshot, so the rows counted per minute are exactly the rows deleted. Folds the live-state
 * changes into job_live_counts too. Returns the count rows folded.
 */
export const foldCounts: MaintenanceTask<number> = {
  name: 'fold job counts',
  nothing: 0,
  runOnce: async ({ inSnapshot, db }) => {
    const folded = await inSnapshot(async (snapshot) => {
      await jobThroughputFold(snapshot);
      return jobCountsFold(snapshot);
    });
    await jobLiveCountsFold(db);
    await jobThroughputPrune(db, new Date(Date.now() - THROUGHPUT_LIMITS.retentionDays * DAY_MS));
    return folded;
  },
};
