import type { JobRow } from '../jobs/columns.js';
import { gateRateRelease } from '../queue/sql/gates.js';
import type { MaintenanceTask } from './task.js';

/**
 * The rate window: gives back the rate units of starts older than their gate's interval and admits
 * the waiting jobs they make room for. Jobs over a rate wait outside the claim index meanwhile, so
 * nothing polls for them; a freed unit is handed on within one maintenance interval.
 */
export const releaseRateUnits: MaintenanceTask<JobRow[]> = {
  name: 'release rate units',
  nothing: [],
  runOnce: ({ db, settings, batchSize }) => gateRateRelease(db, batchSize, settings),
};
