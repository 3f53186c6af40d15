import { InvalidInputError } from '../errors.js';
import type { JobTypeRegistry } from '../jobTypes/registry.js';
import { LIMITS } from '../queue/limits.js';
import { checkStorableJson } from '../queue/storableJson.js';
import { checkConcurrencyKey, checkLength, checkRange, checkUserId } from '../queue/validation.js';
import { MISSED_TICK_POLICIES, type MissedTickPolicy } from './missedTicks.js';
import { checkTiming, type Timing } from './timing.js';

/** What each tick's job is made from (as submitJob takes it; the payload is validated at each tick too). */
export interface JobTemplate {
  type: string;
  payload?: unknown;
  userId: string;
  priority?: number | null;
  maxAttempts?: number | null;
  /** The named queue of its jobs; default: the type's queue, else `default` (as on submit). */
  queue?: string | null;
  /** The concurrency key of its jobs (its key's cap and rate limit, configureKey), as on submit. */
  concurrencyKey?: string | null;
}

/**
 * A recurring schedule, in the config file (`defineSchedule`) or over GraphQL (`upsertSchedule`):
 * `cron` (with `timeZone`, default UTC) or `intervalMs`, the job template, and what to do with ticks
 * missed while nothing ran (`missedTicks`, default SKIP; RUN_EACH makes up to `maxCatchUp` jobs).
 */
export interface ScheduleDefinition {
  name: string;
  cron?: string | null;
  timeZone?: string | null;
  intervalMs?: number | null;
  job: JobTemplate;
  missedTicks?: MissedTickPolicy | null;
  maxCatchUp?: number | null;
}

/** Declares a schedule for a config file's `schedules` (typed; returns it as it is). */
export function defineSchedule(definition: ScheduleDefinition): ScheduleDefinition {
  return definition;
}

/** The job a schedule's tick submits, checked, with its defaults filled in. */
export interface ScheduleJobTemplate {
  type: string;
  payload: unknown;
  userId: string;
  priority: number;
  maxAttempts: number | null;
  queue: string | null;
  concurrencyKey: string | null;
}

/** A schedule as stored: checked, with its defaults filled in. */
export interface CheckedSchedule {
  name: string;
  timing: Timing;
  job: ScheduleJobTemplate;
  missedTicks: MissedTickPolicy;
  maxCatchUp: number;
}

export const SCHEDULE_LIMITS = {
  /** The name goes into each tick's idempotency key, `schedule:<name>:<24-character ISO time>`. */
  nameLength: LIMITS.idempotencyKeyLength - 'schedule::'.length - 24,
  maxCatchUp: 1000,
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

/**
 * Checks a definition against the job types this process knows; InvalidInputError naming the first
 * problem (BAD_USER_INPUT over GraphQL).
 */
export function checkSchedule(
  definition: ScheduleDefinition,
  jobTypes: Pick<JobTypeRegistry, 'parsePayload'>,
  maxPayloadBytes: number,
): CheckedSchedule {
  const { name, job } = definition;
  if (typeof name !== 'string' || !NAME.test(name) || name.length > SCHEDULE_LIMITS.nameLength) {
    throw new InvalidInputError(
      `A schedule's name is 1 to ${SCHEDULE_LIMITS.nameLength} letters, digits and _ . : - (starting with a letter or digit).`,
    );
  }
  const timing = checkTiming(definition);
  if (typeof job !== 'object' || job === null) throw new InvalidInputError('A schedule needs a job template (job: { type, userId, … }).');
  checkLength('job.type', job.type, LIMITS.typeLength);
  checkUserId(job.userId);
  checkStorableJson('job.payload', job.payload ?? {});
  const payloadBytes = Buffer.byteLength(JSON.stringify(job.payload ?? {}));
  if (payloadBytes > maxPayloadBytes) {
    throw new InvalidInputError(`job.payload is ${payloadBytes} bytes of JSON; the limit is ${maxPayloadBytes} (MAX_PAYLOAD_BYTES).`);
  }
  // As submitJob would refuse it at each tick: an unknown type or a payload its schema refuses.
  jobTypes.parsePayload(job.type, job.payload ?? {});
  const priority = job.priority ?? 0;
  checkRange('job.priority', priority, -LIMITS.priority, LIMITS.priority);
  if (job.maxAttempts != null) checkRange('job.maxAttempts', job.maxAttempts, 1, LIMITS.maxAttempts);
  if (job.queue != null) checkLength('job.queue', job.queue, LIMITS.queueLength);
  if (job.concurrencyKey != null) checkConcurrencyKey(job.concurrencyKey);
  const missedTicks = definition.missedTicks ?? 'SKIP';
  if (!MISSED_TICK_POLICIES.includes(missedTicks)) {
    throw new InvalidInputError(`missedTicks must be one of ${MISSED_TICK_POLICIES.join(', ')}.`);
  }
  const maxCatchUp = definition.maxCatchUp ?? 10;
  checkRange('maxCatchUp', maxCatchUp, 1, SCHEDULE_LIMITS.maxCatchUp);
  return {
    name,
    timing,
    job: {
      type: job.type,
      payload: job.payload ?? {},
      userId: job.userId,
      priority,
      maxAttempts: job.maxAttempts ?? null,
      queue: job.queue ?? null,
      concurrencyKey: job.concurrencyKey ?? null,
    },
    missedTicks,
    maxCatchUp,
  };
}
