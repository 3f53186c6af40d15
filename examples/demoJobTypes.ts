// The demo job types `npm start` runs (examples/demo.config.ts). In a project of your own, import
// from 'conveyor' instead of '../src/index.js'.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineJobType, NonRetryableError } from '../src/index.js';

/** Returns its payload: the smallest possible job, for trying the queue out. */
export const echoJob = defineJobType({
  name: 'echo',
  payload: z.object({ message: z.string().max(10_000).optional(), fail: z.boolean().optional() }).strict(),
  result: z.object({ echoed: z.string().nullable() }),
  async handler(payload) {
    if (payload.fail) throw new Error(`echo asked to fail: ${payload.message ?? ''}`);
    return { echoed: payload.message ?? null };
  },
});

/** Waits, reporting progress as it goes; honours cancellation. */
export const sleepJob = defineJobType({
  name: 'sleep',
  payload: z
    .object({
      ms: z.number().int().min(0).max(3_600_000),
      steps: z.number().int().min(1).max(100).default(10),
    })
    .strict(),
  result: z.object({ sleptMs: z.number().int() }),
  timeoutMs: 3_700_000,
  async handler({ ms, steps }, { signal, reportProgress }) {
    for (let step = 1; step <= steps; step++) {
      await sleep(ms / steps, undefined, { signal });
      reportProgress(Math.round((step / steps) * 100), `step ${step} of ${steps}`);
    }
    return { sleptMs: ms };
  },
});

/** Simulates sending an email: validates the address at submit, "sends" after a short delay. */
export const sendEmailJob = defineJobType({
  name: 'send_email',
  payload: z
    .object({
      to: z.string().email().max(254),
      subject: z.string().min(1).max(998),
      body: z.string().max(100_000).default(''),
    })
    .strict(),
  result: z.object({ deliveredTo: z.string(), subject: z.string(), messageId: z.string() }),
  timeoutMs: 30_000,
  maxAttempts: 5,
  async handler({ to, subject }, { signal }) {
    // A bounce from a reserved domain is permanent: retrying would not help.
    if (to.endsWith('@bounce.invalid')) throw new NonRetryableError(`mailbox ${to} does not exist`);
    await sleep(20, undefined, { signal });
    return { deliveredTo: to, subject, messageId: `<${crypto.randomUUID()}@conveyor.local>` };
  },
});

/** The demo types `npm start` runs (echo, sleep, send_email). */
export const demoJobTypes = [echoJob, sleepJob, sendEmailJob];
