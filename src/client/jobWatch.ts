import type { Client } from 'graphql-ws';
import { isFinished } from '../jobs/states.js';
import { Channel } from './channel.js';
import { subscriptionError } from './errors.js';
import { JobUpdatedDocument, type JobStatus, type JobUpdatedSubscription } from './generated/graphql.js';
import { retryOnConnectionError } from './retry.js';
import { queryOf, type LiveSocketEvents } from './transport.js';

/** A job as `watch` yields it: its fields and its result (no payload). */
export type WatchedJob = JobUpdatedSubscription['jobUpdated'];

/** One job by id, or every job of one user. */
export type WatchTarget = { id: string } | { userId: string };

export interface WatchDeps {
  /** The client's graphql-ws connection (created on first use). */
  socket(): Client;
  /** Listens to that connection's (re)connects and closes until the returned function is called. */
  onConnection(listener: LiveSocketEvents): () => void;
  get(id: string): Promise<WatchedJob | null>;
  /** One page of a user's jobs, newest first. */
  listPage(userId: string, after: string | null, first: number): Promise<{ jobs: WatchedJob[]; nextCursor: string | null }>;
}

/** Versions remembered per watch (the oldest forgotten first), as the server's feeds do. */
const REMEMBERED_JOBS_MAX = 10_000;
/**
 * graphql-ws has no acknowledgement of a subscribe message: after a reconnect the re-read runs once at
 * once and once more this long after, so that it also covers the moment the server takes to register
 * the subscription the client sent again.
 */
const SETTLE_MS = 1000;
/** Pages of new jobs a re-read looks through at most (100 jobs each). */
const RESYNC_PAGES_MAX = 50;
const PAGE_SIZE = 100;
/** Jobs re-read at once with `get`. */
const GETS_AT_ONCE = 8;

/**
 * The changes of one job or of one user's jobs, as an async iterator over graphql-ws, never older than
 * a version already yielded and never the same version twice.
 *
 * By id, the server sends the job as it is first, also when graphql-ws subscribes again after a
 * reconnect, so a reconnect loses nothing. By user, the server sends only changes: after a reconnect
 * the watch re-reads what the subscription could have missed meanwhile: the jobs submitted since (the
 * newest pages of `userJobs`, down to a job it knew already), and every job it knew that had not
 * finished (`job(id)`). Not re-read: a job that had finished before the connection was lost and was
 * retried *and* finished again while it was down.
 */
export async function* watchJobs(deps: WatchDeps, target: WatchTarget, signal?: AbortSignal): AsyncGenerator<WatchedJob, void, undefined> {
  const channel = new Channel<WatchedJob>();
  const latest = new Map<string, { version: number; status: JobStatus }>();
  const accept = (job: WatchedJob) => {
    if ((latest.get(job.id)?.version ?? 0) >= job.version) return;
    latest.delete(job.id);
    latest.set(job.id, { version: job.version, status: job.status });
    if (latest.size > REMEMBERED_JOBS_MAX) latest.delete(latest.keys().next().value!);
    channel.push(job);
  };

  const userId = 'userId' in target ? target.userId : null;
  // The jobs known when the connection was lost: a re-read of new jobs stops at the first of them.
  let knownAtLoss: Set<string> | null = null;
  let newestAtStart: Promise<string | null> = Promise.resolve(null);
  const resyncTimers = new Set<ReturnType<typeof setTimeout>>();
  const scheduleResync = (delayMs: number, last: boolean) => {
    const timer = setTimeout(() => {
      resyncTimers.delete(timer);
      void resync(last);
    }, delayMs);
    resyncTimers.add(timer);
  };
  const resync = async (last: boolean) => {
    const stopAt = new Set(knownAtLoss ?? latest.keys());
    const newest = await newestAtStart.catch(() => null);
    if (newest) stopAt.add(newest);
    try {
      // Right after a reconnect the server may still be coming up: a few tries.
      await retryOnConnectionError(() => rereadUser(deps, userId!, stopAt, latest, accept));
    } catch (error) {
      channel.fail(error);
    }
    if (last) knownAtLoss = null;
  };

  const stopListening = deps.onConnection({
    onClosed: () => {
      if (userId !== null) knownAtLoss ??= new Set(latest.keys());
    },
    onConnected: (wasRetry) => {
      if (!wasRetry || userId === null) return;
      // After graphql-ws has sent the subscription again (it does so once this event returns).
      scheduleResync(0, false);
      scheduleResync(SETTLE_MS, true);
    },
  });
  const dispose = deps.socket().subscribe<JobUpdatedSubscription>(
    { query: queryOf(JobUpdatedDocument), variables: target },
    {
      next: (result) => {
        if (result.errors?.length) channel.fail(subscriptionError(result.errors));
        else if (result.data) accept(result.data.jobUpdated);
      },
      error: (error) => channel.fail(subscriptionError(error)),
      complete: () => channel.end(),
    },
  );
  if (userId !== null) newestAtStart = deps.listPage(userId, null, 1).then((page) => page.jobs[0]?.id ?? null);
  const end = () => channel.end();
  signal?.addEventListener('abort', end, { once: true });
  try {
    if (signal?.aborted) return;
    yield* channel;
  } finally {
    signal?.removeEventListener('abort', end);
    for (const timer of resyncTimers) clearTimeout(timer);
    stopListening();
    dispose();
  }
}

/** One re-read of a user's jobs after a reconnect (see watchJobs). */
async function rereadUser(
  deps: WatchDeps,
  userId: string,
  stopAt: ReadonlySet<string>,
  latest: ReadonlyMap<string, { status: JobStatus }>,
  accept: (job: WatchedJob) => void,
) {
  let after: string | null = null;
  for (let page = 0; page < RESYNC_PAGES_MAX; page++) {
    const { jobs, nextCursor } = await deps.listPage(userId, after, PAGE_SIZE);
    const known = jobs.findIndex((job) => stopAt.has(job.id));
    jobs.slice(0, known === -1 ? jobs.length : known).forEach(accept);
    if (known !== -1 || !nextCursor) break;
    after = nextCursor;
  }
  const unfinished = [...latest].filter(([, job]) => !isFinished(job.status)).map(([id]) => id);
  for (let start = 0; start < unfinished.length; start += GETS_AT_ONCE) {
    const jobs = await Promise.all(unfinished.slice(start, start + GETS_AT_ONCE).map((id) => deps.get(id)));
    for (const job of jobs) if (job) accept(job);
  }
}
