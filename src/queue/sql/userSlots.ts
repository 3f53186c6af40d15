/**
 * A user's slot row (user_slots): taken by a submit, and locked, by primary key, by the statements
 * that hand slots out (admission.ts).
 */
import type { Prisma } from '../../generated/prisma/client.js';
import { raw, sql, type StatementSettings } from './fragments.js';
import { storedUserLimit } from '../limits.js';

/** The most jobs user slot row `s` may hold at once: its own limit, or the default. */
export function userLimit(settings: StatementSettings, s = 's'): string {
  return `coalesce(${s}.max_running, ${storedUserLimit(settings.defaultUserConcurrency)}::int)`;
}

/**
 * FROM items: the users of query `users` (a distinct `user_id` a row, and any other columns) as `u`,
 * and each one's user_slots row as `s`, locked one primary-key lookup at a time in user_id order,
 * after the statement's CTE gate_rows (gate rows before slot rows, the order every statement locks
 * them in). As a filter `s.user_id = ANY(ARRAY(…))` the planner, which takes such a list for 10
 * users, chose at 1 000 users (PostgreSQL 15, bench 2d) a scan of every slot row testing each against
 * the whole list: 5 ms of a 200-job completion and 9 ms of a 1 000-job submit. The CTE that selects
 * from these must be MATERIALIZED: the lock sits in a subquery, so a CTE read once could be folded
 * into a later join and take its locks there, out of order.
 */
export function slotRowsLocked(users: string): string {
  return `(SELECT * FROM (${users}) x ORDER BY x.user_id) u,
    LATERAL (SELECT s.* FROM user_slots s WHERE s.user_id = u.user_id AND (SELECT count(*) FROM gate_rows) >= 0 FOR UPDATE) s`;
}

/** The CTE `slots(user_id, free)`: the slot rows of the users in CTE `source`, locked, with their room. */
export function slotsWithRoomLocked(source: string, settings: StatementSettings): string {
  return `slots AS MATERIALIZED (
    SELECT s.user_id, greatest(${userLimit(settings)} - s.used, 0) AS free
    FROM ${slotRowsLocked(`SELECT DISTINCT user_id FROM ${source}`)}
  )`;
}

/**
 * Takes one of the user's slots if `take` holds and one is free; the CTE `slot` has a row when it did.
 * The user's slot row is created whenever `ensure` holds, taken or not: maintenance hands slots to
 * due jobs only through slot rows, so a job of a user without one (say, scheduled for later) would
 * wait for ever. `take` must include the gates' verdict (`gate_rows` locked first).
 */
export function slotAcquire(userIdSql: Prisma.Sql, ensure: Prisma.Sql, take: Prisma.Sql, settings: StatementSettings): Prisma.Sql {
  return sql`
  slot_row AS (
    INSERT INTO user_slots AS s (user_id, used)
    SELECT ${userIdSql}, CASE WHEN ${take} THEN 1 ELSE 0 END WHERE ${ensure}
    ON CONFLICT (user_id) DO UPDATE SET used = s.used + 1
      WHERE ${take} AND s.used < ${raw(userLimit(settings))}
    RETURNING s.user_id
  ),
  slot AS (SELECT user_id FROM slot_row WHERE ${take})`;
}
