// The job types the benchmark's server and worker processes run: `echo`, a job that does nothing but
// return, as the demo's, and `chatty`, which logs `rate` lines a second for `seconds` (scenario 8). Plain JavaScript importing the build (dist/), so that a process loads no
// TypeScript and its memory is a deployment's.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineConfig, defineJobType } from '../dist/index.js';

export default defineConfig({
  jobTypes: [
    defineJobType({
      name: 'echo',
      payload: z.object({ message: z.string().max(10_000).optional(), fail: z.boolean().optional() }).strict(),
      async handler(payload) {
        if (payload.fail) throw new Error(`echo asked to fail: ${payload.message ?? ''}`);
        return { echoed: payload.message ?? null };
      },
    }),
    defineJobType({
      name: 'chatty',
      payload: z.object({ rate: z.number().int().positive(), seconds: z.number().positive() }),
      async handler({ rate, seconds }, { log, signal }) {
        // On a schedule (line i is due at i / rate s), so that a slow turn is caught up, not lost.
        const started = Date.now();
        for (let i = 0; i < rate * seconds && !signal.aborted; i++) {
          const wait = started + (i * 1000) / rate - Date.now();
          if (wait > 0) await sleep(wait);
          log('INFO', `line ${i}`, { i });
        }
        return null;
      },
    }),
  ],
});
