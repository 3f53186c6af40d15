// The job types the benchmark's server and worker processes run: `echo`, a job that does nothing but
// return, as the demo's. Plain JavaScript importing the build (dist/), so that a process loads no
// TypeScript and its memory is a deployment's.
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
  ],
});
