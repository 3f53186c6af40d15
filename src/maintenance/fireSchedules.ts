import type { MaintenanceTask } from './task.js';

/**
 * The schedules' due-tick task: makes the job of each due tick and moves the schedule on. It runs
 * under the maintenance lock only to spare the other processes the work: firing is correct without it
 * (see src/schedules/fireDue.ts).
 */
export const fireSchedules: MaintenanceTask<number> = {
  name: 'fire due schedules',
  nothing: 0,
  runOnce: ({ schedules, batchSize }) => (schedules ? schedules.fireDue({ limit: batchSize }) : Promise.resolve(0)),
};
