import { ConveyorError } from '../errors.js';
import type { Logger } from '../logger.js';
import { LIMITS, TICK_KEY_PREFIX } from '../queue/limits.js';
import type { JobQueue } from '../queue/queue.js';
import type { Db } from '../queue/sql/fragments.js';
import type { SubmitJobInput } from '../queue/submissions.js';
import { ticksToFire } from './missedTicks.js';
import { databaseNow, scheduleAdvanceMany, scheduleListDue, type ScheduleAdvance, type ScheduleRow } from './sql.js';
import { tickAfter, type Timing } from './timing.js';

/** The idempotency key of a tick's job: unique per user, so one job per tick whoever fires it. */
export function tickKey(name: string, tick: Date): string {
  return `${TICK_KEY_PREFIX}${name}:${tick.toISOString()}`;
}

export function timingOf(row: Pick<ScheduleRow, 'cron' | 'timeZone' | 'intervalMs'>): Timing {
  return row.cron !== null ? { cron: row.cron, timeZone: row.timeZone ?? 'UTC' } : { intervalMs: row.intervalMs! };
}

/** One due schedule's firing: its ticks' jobs, and how its row moves once they exist. */
interface Firing {
  row: ScheduleRow;
  ticks: Date[];
  inputs: SubmitJobInput[];
  advance: ScheduleAdvance;
}

/**
 * Makes the jobs of every due tick (of up to `limit` schedules, earliest due first) and moves each
 * schedule past them. Safe to run in any number of processes at once, with or without the
 * maintenance lock: each tick's job is inserted with its tick's idempotency key (a second insert
 * returns the first job), and a schedule moves only if its next_tick_at is still the one read. A
 * crash between the two leaves the schedule due; the next pass makes the same keys, so no job twice.
 * A template that cannot make a job (a type this process does not know, a payload its schema
 * refuses) skips its tick and says why in lastError, logged when it changes; the others go on.
 * Ticks are due by PostgreSQL's clock, not the firing process's. Returns the number of jobs made.
 */
export async function fireDueSchedules(
  deps: { db: Db; queue: Pick<JobQueue, 'submitJobs' | 'jobTypes'>; logger: Logger },
  options: { now?: Date; limit: number },
): Promise<number> {
  const now = options.now ?? (await databaseNow(deps.db));
  const due = await scheduleListDue(deps.db, now, options.limit);
  const firings = due.map((row) => plan(row, now, deps.queue.jobTypes));
  let made = 0;
  for (const chunk of chunks(firings.filter((f) => f.inputs.length > 0))) {
    made += await submit(deps.queue, chunk);
  }
  const moved = new Set(
    await scheduleAdvanceMany(
      deps.db,
      firings.map((f) => f.advance),
    ),
  );
  for (const { row, advance } of firings) {
    if (moved.has(row.name) && advance.lastError !== null && advance.lastError !== row.lastError) {
      deps.logger.warn({ schedule: row.name, error: advance.lastError }, 'schedule skipped a tick: its job could not be made');
    }
  }
  return made;
}

/** How long a schedule whose ticks could not be computed waits before the next try. */
const RETRY_UNCOMPUTABLE_MS = 60_000;

function plan(row: ScheduleRow, now: Date, jobTypes: JobQueue['jobTypes']): Firing {
  const advanceTo = (nextTickAt: Date, lastError: string | null): ScheduleAdvance => ({
    name: row.name,
    expected: row.nextTickAt,
    nextTickAt,
    lastTickAt: null,
    lastJobId: null,
    lastError,
  });
  let ticks: Date[];
  let nextTickAt: Date;
  try {
    const timing = timingOf(row);
    ticks = ticksToFire({ timing, missedTicks: row.missedTicks, maxCatchUp: row.maxCatchUp, nextTickAt: row.nextTickAt }, now);
    nextTickAt = tickAfter(timing, now);
  } catch (error) {
    // The cron library failing on one schedule (a row written by hand, a time zone's gap) skips that
    // schedule's ticks for now and says why; the others in the pass still fire.
    const lastError = `its ticks could not be computed: ${(error as Error).message}`;
    return { row, ticks: [], inputs: [], advance: advanceTo(new Date(now.getTime() + RETRY_UNCOMPUTABLE_MS), lastError) };
  }
  try {
    // Checked here, in memory, so that one bad template does not fail the batch it would share.
    jobTypes.parsePayload(row.jobType, row.payload);
  } catch (error) {
    return { row, ticks: [], inputs: [], advance: advanceTo(nextTickAt, (error as Error).message) };
  }
  const inputs = ticks.map((tick): SubmitJobInput => ({
    type: row.jobType,
    payload: row.payload,
    userId: row.userId,
    priority: row.priority,
    maxAttempts: row.maxAttempts,
    queue: row.queue,
    concurrencyKey: row.concurrencyKey,
    // The tick, not the moment it was fired: caught-up ticks keep their order in the queue.
    runAt: tick,
    idempotencyKey: tickKey(row.name, tick),
  }));
  return { row, ticks, inputs, advance: advanceTo(nextTickAt, null) };
}

/** Firings grouped so that each group's jobs fit one submitJobs call (maxCatchUp ≤ submitBatch). */
function* chunks(firings: Firing[]): Generator<Firing[]> {
  let chunk: Firing[] = [];
  let size = 0;
  for (const firing of firings) {
    if (size + firing.inputs.length > LIMITS.submitBatch) {
      yield chunk;
      chunk = [];
      size = 0;
    }
    chunk.push(firing);
    size += firing.inputs.length;
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * Submits a group's jobs in one statement and records each schedule's latest job. If a template is
 * refused after all (e.g. by a check the in-memory one does not make), each schedule is submitted
 * alone, so that only the refused one skips its tick; any other error fails the pass, leaving every
 * schedule of the group due for the next one.
 */
async function submit(queue: Pick<JobQueue, 'submitJobs'>, chunk: Firing[]): Promise<number> {
  const record = (firing: Firing, submitted: Awaited<ReturnType<JobQueue['submitJobs']>>) => {
    firing.advance.lastTickAt = firing.ticks.at(-1)!;
    firing.advance.lastJobId = submitted.at(-1)!.job.id;
    return submitted.filter((s) => !s.deduplicated).length;
  };
  try {
    const submitted = await queue.submitJobs(chunk.flatMap((f) => f.inputs));
    let offset = 0;
    return chunk.reduce((made, firing) => {
      const own = submitted.slice(offset, (offset += firing.inputs.length));
      return made + record(firing, own);
    }, 0);
  } catch (error) {
    if (!(error instanceof ConveyorError)) throw error;
  }
  let made = 0;
  for (const firing of chunk) {
    try {
      made += record(firing, await queue.submitJobs(firing.inputs));
    } catch (error) {
      if (!(error instanceof ConveyorError)) throw error;
      firing.advance.lastError = error.message;
    }
  }
  return made;
}
