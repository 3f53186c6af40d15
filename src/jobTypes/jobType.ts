import type { z } from 'zod';
import type { JobRow } from '../jobs/columns.js';
import type { JobLogLevel } from '../jobs/logLevels.js';
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
  /**
   * Appends a line to the job's log (Job.logs, and live to jobLogAppended subscribers): buffered and
   * written in batches, so it never waits. Throws InvalidInputError, at once, for a line the API would
   * refuse (an unknown level, a message over LIMITS.logMessageLength, fields that are not a small JSON object).
   */
  log: (level: JobLogLevel | Lowercase<JobLogLevel>, message: string, fields?: Record<string, unknown>) => void;
  logger: Logger;
  /**
   * The jobs this one depends on (its children in a flow, and its dependsOn), each with how it ended
   * and its result: a parent reads its children's results here. Read when called, in one query.
   */
  dependencies: () => Promise<DependencyResult[]>;
}

/** A dependency as a handler reads it (JobContext.dependencies). */
export interface DependencyResult {
  id: string;
  type: string;
  status: string;
  result: unknown;
}

export interface JobTypeDefinition<Payload = unknown, Result = unknown, Job = JobRow> {
  name: string;
  /** Validates (and may normalise) the payload at submit time, and again when a worker claims it. */
  payload: z.ZodType<Payload>;
  /**
   * What the handler returns, if the type promises a shape: the built-in worker checks a result
   * against it (one that does not match fails the job), and the API shows it typed (Job.<type>Result).
   */
  result?: z.ZodType<Result>;
  /** Runs the job in the built-in worker. Without one, the type is for outside workers only. */
  handler?: (payload: Payload, context: JobContext<Job>) => Promise<Result>;
  /** The built-in worker aborts a run after this long and counts it as a failed attempt. */
  timeoutMs?: number;
  /** Default attempts for jobs of this type (a submit may override). */
  maxAttempts?: number;
  /** The named queue this type's jobs go to (a submit may override); default `default`. */
  queue?: string;
  /** A cluster-wide cap on this type's jobs holding a slot (ready or running); null removes one set before. */
  maxRunning?: number | null;
  /** At most `max` of this type's jobs start in any window of `intervalMs`, across every process; null removes one. */
  rateLimit?: { max: number; intervalMs: number } | null;
}

/**
 * Any job type, whatever its payload: what lists of types hold. (A handler's parameter makes
 * JobTypeDefinition<Payload> invariant in Payload, so no narrower type admits them all.)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type AnyJobType = JobTypeDefinition<any, any>;

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

/** A zod error as one line: each problem with the path it is at ("payload" for the root). */
export function describeIssues(error: z.ZodError, root: string): string {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : root}: ${issue.message}`).join('; ');
}

/**
 * Runs a claimed job's handler as every worker must, built-in or SDK: the payload parsed by the type's
 * schema first (a job submitted in an application's transaction was not checked at submit), and the
 * result checked against the type's result schema. Either failing is a NonRetryableError: a payload
 * that does not parse, or a handler whose result breaks the type's promise, would do so again on a retry.
 */
export async function runHandler<Job>(
  definition: JobTypeDefinition<unknown, unknown, Job>,
  payload: unknown,
  context: JobContext<Job>,
): Promise<unknown> {
  if (!definition.handler) throw new NonRetryableError(`no handler for job type ${definition.name} in this worker`);
  const parsed = definition.payload.safeParse(payload);
  if (!parsed.success) {
    throw new NonRetryableError(`Invalid payload for job type "${definition.name}": ${describeIssues(parsed.error, 'payload')}`);
  }
  const result = await definition.handler(parsed.data, context);
  const checked = definition.result?.safeParse(result);
  if (checked && !checked.success) {
    throw new NonRetryableError(`the handler's result does not match the type's result schema: ${describeIssues(checked.error, 'result')}`);
  }
  return result;
}

/**
 * Declares a job type. The identity function, typed so that the handler's payload is what the payload
 * schema parses (defaults filled in) and its return value what the result schema, if any, accepts.
 */
export function defineJobType<Payload extends z.ZodType, Result extends z.ZodType = z.ZodType<unknown>>(
  definition: JobTypeDefinition<z.output<Payload>, z.input<Result>> & { payload: Payload; result?: Result },
) {
  return definition;
}
