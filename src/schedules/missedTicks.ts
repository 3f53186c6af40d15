import { latestTicksBetween, type Timing } from './timing.js';

export const MISSED_TICK_POLICIES = ['SKIP', 'RUN_LAST', 'RUN_EACH'] as const;
export type MissedTickPolicy = (typeof MISSED_TICK_POLICIES)[number];

/**
 * How late a tick may be fired and still count as on time (not missed) under SKIP. The due-tick task
 * runs every MAINTENANCE_INTERVAL_MS (1 s by default) under a leader that may be busy or changing
 * hands, so a tick is normally fired some hundreds of milliseconds late; a minute late means that
 * nothing was running when it came.
 */
export const ON_TIME_WINDOW_MS = 60_000;

/**
 * The ticks to make jobs for, oldest first, out of those due since `nextTickAt` (the earliest tick not
 * fired yet) up to `now`:
 * - SKIP: only the latest due tick, and only while it is on time; ticks missed while nothing ran are
 *   dropped (the next job is the next future tick's).
 * - RUN_LAST: the latest due tick, however late: one job stands for all the ticks missed.
 * - RUN_EACH: each due tick, the latest `maxCatchUp` of them.
 * When nothing was missed exactly one tick is due, and every policy fires it.
 */
export function ticksToFire(
  schedule: { timing: Timing; missedTicks: MissedTickPolicy; maxCatchUp: number; nextTickAt: Date },
  now: Date,
): Date[] {
  const limit = schedule.missedTicks === 'RUN_EACH' ? schedule.maxCatchUp : 1;
  const due = latestTicksBetween(schedule.timing, schedule.nextTickAt, now, limit);
  if (schedule.missedTicks === 'SKIP') return due.filter((tick) => now.getTime() - tick.getTime() < ON_TIME_WINDOW_MS);
  return due;
}
