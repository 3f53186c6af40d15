// Submits a `sleep` job and follows it live, drawing a progress bar, with the typed client
// (src/client/node.ts, `conveyor/client` once installed in Node), which is built on the documents that
// `npm run codegen` generates.
//
//   npx tsx examples/follow-job.ts [--url http://localhost:4000/graphql] [--user alice] [--ms 3000] [--key KEY]
//
// Exits 0 when the job completes, 1 when it fails or is cancelled.
import { parseArgs } from 'node:util';
import { createConveyorClient, type WatchedJob } from '../src/client/node.js';

const { values: options } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:4000/graphql' },
    user: { type: 'string', default: 'example-user' },
    ms: { type: 'string', default: '3000' },
    key: { type: 'string', default: process.env.CONVEYOR_API_KEY },
  },
});

function progressBar(job: WatchedJob): string {
  const percent = job.status === 'COMPLETED' ? 100 : (job.progress ?? 0);
  const filled = Math.round(percent / 5);
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}] ${String(percent).padStart(3)}%  ${job.status}` +
    (job.progressMessage ? `  ${job.progressMessage}` : '')
  );
}

const conveyor = createConveyorClient({ url: options.url, apiKey: options.key });
const { job } = await conveyor.submit({ type: 'sleep', userId: options.user, payload: { ms: Number(options.ms), steps: 10 } });
console.log(`submitted job ${job.id}`);

let final: WatchedJob | null = null;
for await (const update of conveyor.watch({ id: job.id })) {
  // On a terminal, redraw one line; in a pipe, one line per update.
  if (process.stdout.isTTY) process.stdout.write(`\r${progressBar(update)}`);
  else console.log(progressBar(update));
  if (update.status === 'COMPLETED' || update.status === 'FAILED' || update.status === 'CANCELLED') {
    final = update;
    break;
  }
}
await conveyor.close();
if (process.stdout.isTTY) process.stdout.write('\n');
console.log(final?.status === 'COMPLETED' ? 'done' : `job ended ${final?.status}: ${final?.lastError ?? ''}`);
process.exit(final?.status === 'COMPLETED' ? 0 : 1);
