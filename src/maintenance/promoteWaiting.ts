import type { JobRow } from '../jobs/columns.js';
import type { GateScope } from '../queue/sql/gateUnits.js';
import { listPromotable } from '../queue/sql/reads.js';
import { jobPromoteWaiting } from '../queue/sql/maintenance.js';
import { isolatingFailures, type MaintenanceTask } from './task.js';

/** A user, or a gate as "QUEUE:name" / "TYPE:name": the items a failing pass is bisected over. */
const USER = 'user:';

/**
 * The scheduler: hands free slots and gate units to waiting jobs that became due (scheduled, or backing
 * off after a failure), to jobs a resumed or raised gate lets in, and to any left waiting by a race
 * between a submit and a freed slot (or a promotion that admitted fewer than the room allowed).
 */
export const promoteWaiting: MaintenanceTask<JobRow[]> = {
  name: 'promote waiting jobs',
  nothing: [],
  runOnce: ({ db, settings, batchSize, skipped }) =>
    isolatingFailures(
      () => jobPromoteWaiting(db, { limit: batchSize }, settings),
      async () => {
        const { users, gates } = await listPromotable(db, batchSize, settings);
        return [...users.map((userId) => USER + userId), ...gates.map((gate) => `${gate.scope}:${gate.name}`)];
      },
      (items) =>
        jobPromoteWaiting(
          db,
          {
            userIds: items.filter((item) => item.startsWith(USER)).map((item) => item.slice(USER.length)),
            gates: items
              .filter((item) => !item.startsWith(USER))
              .map((item) => {
                const colon = item.indexOf(':');
                return { scope: item.slice(0, colon) as GateScope, name: item.slice(colon + 1) };
              }),
          },
          settings,
        ),
      skipped,
    ),
};
