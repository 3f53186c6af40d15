import type { z } from 'zod';
import type { JobRow } from '../jobs/columns.js';
import type { Logger } from '../logger.js';

/**
 * What a handler gets besides its payload. `Job` is the job as the worker running it knows it: the
 * row in the built-in worker, the claimed job as the API returns it in the worker SDK.
 */
export interface JobContext<Job = JobRow> {
  job: Job;
  /** Fires when the job is cancelled, times out, or the worker shuts down past its grace period. */
  signal: AbortSignal;
  /** Reports progress (0–100) to subscribers; throttled by the worker. */
  reportProgress: (percent: number, message?: string) => void;
  logger: Logger;
}

export interface JobTypeDefinition<Payload = unknown, Job = JobRow> {
  name: string;
  /** Validates (and may normalise) the payload at submit time. */
  payload: z.ZodType<Payload>;
  /** Runs the job in the built-in worker. Without one, the type is for outside workers only. */
  handler?: (payload: Payload, context: JobContext<Job>) => Promise<unknown>;
  /** The built-in worker aborts a run after this long and counts it as a failed attempt. */
  timeoutMs?: number;
  /** Default attempts for jobs of this type (a submit may override). */
  maxAttempts?: number;
}

/**
 * Any job type, whatever its payload: what lists of types hold. (A handler's parameter makes
 * JobTypeDefinition<Payload> invariant in Payload, so no narrower type admits them all.)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type AnyJobType = JobTypeDefinition<any>;

/** Throw from a handler to fail the job at once, without the retries it has left. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/**
 * Whether a handler's error asks not to be retried. By name as well as by class: a config file loaded
 * beside a built copy of Conveyor (or another copy in node_modules) has a NonRetryableError class of
 * its own, and `instanceof` would not see it.
 */
export function isNonRetryable(error: unknown): boolean {
  return error instanceof NonRetryableError || (error instanceof Error && error.name === 'NonRetryableError');
}

/**
 * Declares a job type. The identity function, typed so that the handler's payload is what the zod
 * schema parses (defaults filled in).
 */
export function defineJobType<Schema extends z.ZodType>(definition: JobTypeDefinition<z.output<Schema>> & { payload: Schema }) {
  return definition;
}
