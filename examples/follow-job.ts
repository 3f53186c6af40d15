// Submits a `sleep` job and follows it live over graphql-ws, drawing a progress bar, using the typed
// documents that `npm run codegen` generates from schema.graphql and client/operations.graphql.
//
//   npx tsx examples/follow-job.ts [--url http://localhost:4000/graphql] [--user alice] [--ms 3000]
//
// Exits 0 when the job completes, 1 when it fails or is cancelled.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { JobUpdatedDocument, SubmitJobDocument, type JobFieldsFragment } from '../client/generated/graphql.js';

const { values: options } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:4000/graphql' },
    user: { type: 'string', default: 'example-user' },
    ms: { type: 'string', default: '3000' },
  },
});

/** One typed GraphQL-over-HTTP request. */
async function request<Result, Variables>(document: TypedDocumentNode<Result, Variables>, variables: Variables): Promise<Result> {
  const response = await fetch(options.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await response.json()) as { data?: Result; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) throw new Error(body.errors?.map((e) => e.message).join('; ') ?? 'no data');
  return body.data;
}

function progressBar(job: JobFieldsFragment): string {
  const percent = job.status === 'COMPLETED' ? 100 : (job.progress ?? 0);
  const filled = Math.round(percent / 5);
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(20 - filled)}] ${String(percent).padStart(3)}%  ${job.status}` +
    (job.progressMessage ? `  ${job.progressMessage}` : '')
  );
}

const { submitJob } = await request(SubmitJobDocument, {
  input: { type: 'sleep', userId: options.user, payload: { ms: Number(options.ms), steps: 10 } },
});
console.log(`submitted job ${submitJob.job.id}`);

const client = createClient({ url: options.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket });
const updates = client.iterate({ query: print(JobUpdatedDocument), variables: { id: submitJob.job.id } });
let final: JobFieldsFragment | null = null;
for await (const update of updates) {
  if (update.errors?.length) throw new Error(update.errors.map((e) => e.message).join('; '));
  const job = (update.data as { jobUpdated: JobFieldsFragment }).jobUpdated;
  // On a terminal, redraw one line; in a pipe, one line per update.
  if (process.stdout.isTTY) process.stdout.write(`\r${progressBar(job)}`);
  else console.log(progressBar(job));
  if (job.status === 'COMPLETED' || job.status === 'FAILED' || job.status === 'CANCELLED') {
    final = job;
    break;
  }
}
await client.dispose();
if (process.stdout.isTTY) process.stdout.write('\n');
console.log(final?.status === 'COMPLETED' ? 'done' : `job ended ${final?.status}: ${final?.lastError ?? ''}`);
process.exit(final?.status === 'COMPLETED' ? 0 : 1);
