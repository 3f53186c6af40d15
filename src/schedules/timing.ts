import { CronExpressionParser } from 'cron-parser';
import { InvalidInputError } from '../errors.js';

/**
 * When a schedule ticks: a cron expression read in an IANA time zone (5 fields, or 6 with seconds
 * first), or a fixed interval aligned to the Unix epoch (every 3 600 000 ms is on the hour, in UTC),
 * so that every process computes the same ticks without sharing any state.
 */
export type Timing = { cron: string; timeZone: string } | { intervalMs: number };

/** Bounds on intervals: the due-tick task runs every MAINTENANCE_INTERVAL_MS, and the column is an int. */
export const INTERVAL_MS = { min: 1000, max: 2_147_483_647 } as const;

/** Checks a timing as the API or the config file gives it; InvalidInputError naming what is wrong. */
export function checkTiming(input: { cron?: string | null; timeZone?: string | null; intervalMs?: number | null }): Timing {
  const { cron, intervalMs } = input;
  if ((cron == null) === (intervalMs == null)) throw new InvalidInputError('A schedule needs exactly one of cron and intervalMs.');
  if (intervalMs != null) {
    if (input.timeZone != null)
      throw new InvalidInputError('timeZone applies to cron schedules only (intervals count from the Unix epoch).');
    if (!Number.isInteger(intervalMs) || intervalMs < INTERVAL_MS.min || intervalMs > INTERVAL_MS.max) {
      throw new InvalidInputError(`intervalMs must be a whole number from ${INTERVAL_MS.min} to ${INTERVAL_MS.max}.`);
    }
    return { intervalMs };
  }
  const timeZone = input.timeZone ?? 'UTC';
  try {
    // Intl knows the same IANA zones as the parser (Luxon asks Intl), and refuses an unknown one.
    new Intl.DateTimeFormat('en', { timeZone });
  } catch {
    throw new InvalidInputError(`Unknown time zone "${timeZone}": use an IANA name such as "Europe/Paris" or "UTC".`);
  }
  const trimmed = cron!.trim();
  if (trimmed === '' || trimmed.length > 200) throw new InvalidInputError('cron must be a cron expression of 1 to 200 characters.');
  try {
    CronExpressionParser.parse(trimmed, { tz: timeZone }).next();
  } catch (error) {
    throw new InvalidInputError(`Invalid cron expression "${trimmed}": ${(error as Error).message}.`);
  }
  return { cron: trimmed, timeZone };
}

/** The first tick strictly after `after`. */
export function tickAfter(timing: Timing, after: Date): Date {
  if ('intervalMs' in timing) return new Date((Math.floor(after.getTime() / timing.intervalMs) + 1) * timing.intervalMs);
  return cron(timing, after).next().toDate();
}

/** The next `count` ticks from `from` on (`from` itself included when it is a tick). */
export function ticksFrom(timing: Timing, from: Date, count: number): Date[] {
  const ticks: Date[] = [];
  let tick = new Date(from.getTime() - 1);
  for (let i = 0; i < count; i++) ticks.push((tick = tickAfter(timing, tick)));
  return ticks;
}

/**
 * The latest `limit` ticks in [from, to], oldest first. A cron schedule's are read forwards through
 * windows that end at `to` and double in length until they hold `limit` ticks or reach `from`, so that
 * a long gap (a year of minutes) costs about `limit` steps, not one per tick missed. Not backwards
 * with cron-parser's prev(): for a day after the clocks jump forward over a tick (midnight in
 * America/Santiago, 02:00 at Lord Howe) it throws "loop limit exceeded", while next() steps over
 * the gap.
 */
export function latestTicksBetween(timing: Timing, from: Date, to: Date, limit: number): Date[] {
  if ('intervalMs' in timing) {
    const ticks: Date[] = [];
    const first = Math.ceil(from.getTime() / timing.intervalMs);
    for (let k = Math.floor(to.getTime() / timing.intervalMs); k >= first && ticks.length < limit; k--)
      ticks.push(new Date(k * timing.intervalMs));
    return ticks.reverse();
  }
  for (let span = FIRST_WINDOW_MS; ; span *= 2) {
    const start = Math.max(from.getTime(), to.getTime() - span);
    const ticks: Date[] = [];
    const expression = cron(timing, new Date(start - 1));
    for (let tick = expression.next().toDate(); tick <= to; tick = expression.next().toDate()) {
      ticks.push(tick);
      if (ticks.length > limit) ticks.shift();
    }
    if (ticks.length >= limit || start === from.getTime()) return ticks;
  }
}

/** The first window latestTicksBetween reads: a minute holds a few ticks of most schedules. */
const FIRST_WINDOW_MS = 60_000;

function cron(timing: { cron: string; timeZone: string }, currentDate: Date) {
  return CronExpressionParser.parse(timing.cron, { currentDate, tz: timing.timeZone });
}
