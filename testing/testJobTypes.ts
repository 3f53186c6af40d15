import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { NonRetryableError, type AnyJobType } from '../src/jobTypes/jobType.js';
import type { JobQueue } from '../src/queue/queue.js';

/** What the in-process test handlers observed, keyed by job id. */
export class HandlerLog {
  readonly attempts = new Map<string, number[]>();
  readonly aborts = new Map<string, string>();
  /** Jobs whose `flaky` handler should start succeeding. */
  readonly healed = new Set<string>();

  recordAttempt(id: string) {
    this.attempts.set(id, [...(this.attempts.get(id) ?? []), Date.now()]);
  }
}

export function testJobTypes(log: HandlerLog): AnyJobType[] {
  return [
    {
      name: 'flaky',
      payload: z.object({ failTimes: z.number().int().default(1_000_000) }),
      async handler({ failTimes }, { job }) {
        log.recordAttempt(job.id);
        if (job.attempts <= failTimes && !log.healed.has(job.id)) throw new Error(`flaky failure ${job.attempts}`);
        return { attempts: job.attempts };
      },
    },
    {
      name: 'permanent',
      payload: z.object({}),
      async handler(_payload, { job }) {
        log.recordAttempt(job.id);
        throw new NonRetryableError('this cannot succeed');
      },
    },
    {
      name: 'block',
      payload: z.object({ ms: z.number().int().default(600_000) }),
      timeoutMs: 60_000,
      async handler({ ms }, { job, signal }) {
        log.recordAttempt(job.id);
        try {
          await sleep(ms, undefined, { signal });
        } catch (error) {
          log.aborts.set(job.id, String((signal.reason as Error)?.message ?? error));
          throw error;
        }
        return { sleptMs: ms };
      },
    },
    {
      name: 'hang',
      payload: z.object({}),
      timeoutMs: 200,
      maxAttempts: 1,
      async handler(_payload, { job, signal }) {
        log.recordAttempt(job.id);
        await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
      },
    },
    {
      // Ignores its abort and never returns.
      name: 'stubborn',
      payload: z.object({}),
      timeoutMs: 200,
      maxAttempts: 1,
      async handler(_payload, { job }) {
        log.recordAttempt(job.id);
        await new Promise(() => {});
      },
    },
    {
      // Looks at its signal only once past its timeout (the worker makes a signal when first read).
      name: 'late_look',
      payload: z.object({}),
      timeoutMs: 100,
      maxAttempts: 1,
      async handler(_payload, context) {
        log.recordAttempt(context.job.id);
        await sleep(400);
        const { signal } = context;
        log.aborts.set(context.job.id, `${signal.aborted}: ${(signal.reason as Error | undefined)?.message}`);
        return null;
      },
    },
  ];
}

/** Polls until the job reaches one of `statuses` (the built-in worker runs asynchronously). */
export async function waitForStatus(conveyor: { queue: JobQueue }, id: string, statuses: string[], timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await conveyor.queue.getJob(id);
    if (job && statuses.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${job?.status}, not ${statuses.join('/')}`);
    await sleep(25);
  }
}
