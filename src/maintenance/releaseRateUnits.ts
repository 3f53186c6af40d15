import type { JobRow } from '../jobs/columns.js';
import { gateRateRelease } from '../queue/sql/gates.js';
import type { MaintenanceTask } from './task.js';

/** Batches one pass releases at most: a gate starting more than batchSize × this per interval would fall behind. */
const ROUNDS_PER_PASS = 20;

/**
 * The rate window: gives back the rate units of starts older than their gate's interval and admits
 * the waiting jobs they make room for. Jobs over a rate wait outside the claim index meanwhile, so
 * nothing polls for them; a freed unit is handed on within one maintenance interval. A pass releases
 * batch after batch while there are due ones (one batch a pass held a 5 000/s rate to 1 000/s).
 */
export const releaseRateUnits: MaintenanceTask<JobRow[]> = {
  name: 'release rate units',
  nothing: [],
  runOnce: async ({ db, settings, batchSize }) => {
    const promoted: JobRow[] = [];
    for (let round = 0; round < ROUNDS_PER_PASS; round++) {
      const rows = await gateRateRelease(db, batchSize, settings);
      for (const { released: _released, ...job } of rows) if (job.id !== null) promoted.push(job as JobRow);
      if ((rows[0]?.released ?? 0) < batchSize) break;
    }
    return promoted;
  },
};
