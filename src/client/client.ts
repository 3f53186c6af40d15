import type { Client } from 'graphql-ws';
import {
  CancelJobDocument,
  CancelJobsDocument,
  JobDocument,
  JobsDocument,
  RetryJobDocument,
  RetryJobsDocument,
  SubmitJobDocument,
  UserJobsWithResultsDocument,
  type CancelJobMutation,
  type JobFilter,
  type JobQuery,
  type JobsQuery,
  type JobStatus,
  type SubmitJobInput,
  type SubmitJobMutation,
} from './generated/graphql.js';
import { watchJobs, type WatchedJob, type WatchTarget } from './jobWatch.js';
import { closeSocket, httpExecutor, liveSocket, type ConnectionOptions, type LiveSocketEvents } from './transport.js';

/**
 * The typed client for apps, in Node and in the browser: `import { createConveyorClient } from
 * 'conveyor/client'`. Built on the documents `npm run codegen` generates, so every result is typed.
 * Queries and mutations go over HTTP (`fetch`); `watch` over graphql-ws, which connects on the first
 * watch and reconnects while any runs. Errors: ConveyorApiError (with the server's `code`) and
 * ConveyorConnectionError.
 */
export { ConveyorApiError, ConveyorConnectionError, type ApiErrorCode, type ServerError } from './errors.js';
export type { JobFilter, JobStatus, SubmitJobInput } from './generated/graphql.js';
export type { WatchedJob, WatchTarget } from './jobWatch.js';
export type { ConnectionOptions } from './transport.js';

export type SubmittedJob = SubmitJobMutation['submitJob'];
/** A job with its payload, result and worker, as `get` reads it. */
export type FullJob = NonNullable<JobQuery['job']>;
/** A job's fields, as `cancel` and `retry` return it. */
export type JobSummary = CancelJobMutation['cancelJob'];

export interface JobPage {
  /** Newest first. */
  jobs: WatchedJob[];
  /** Pass as `after` for the next page; null on the last. */
  nextCursor: string | null;
}

/** A job as `search` finds it (with its tags and metadata). */
export type FoundJob = JobsQuery['jobs']['edges'][number]['node'];

export interface SearchPage {
  /** Newest first. */
  jobs: FoundJob[];
  /** Pass as `after` for the next page; null on the last. */
  nextCursor: string | null;
}

export interface SearchOptions {
  /** Type, user, status, tags (all of them), created and finished time; none: every job (a USER key: its own). */
  filter?: JobFilter | null;
  /** Page size, up to 100 (default 20). */
  first?: number;
  after?: string | null;
}

export interface ListOptions {
  userId: string;
  status?: JobStatus | null;
  /** Page size, up to 100 (default 20). */
  first?: number;
  after?: string | null;
}

export interface ConveyorClient {
  /**
   * Submits a job; with an idempotencyKey already used by the user, or a unique key within its window,
   * returns that job (`deduplicated`); a DEBOUNCE submit updates the queued one (`debounced`).
   */
  submit(input: SubmitJobInput): Promise<SubmittedJob>;
  /** The job, or null when there is none (or it is another user's, for a USER key). */
  get(id: string): Promise<FullJob | null>;
  /** One page of a user's jobs, newest first. */
  list(options: ListOptions): Promise<JobPage>;
  /**
   * The job's (or the user's jobs') changes as they commit, in `version` order per job: by id the job
   * as it is comes first. Resumes after a reconnect without losing a change's outcome (see
   * jobWatch.ts). Runs until the loop breaks, `signal` aborts or the client closes. An id of no job
   * (or, for a USER key, of another user's) yields nothing, as the server sends nothing for it.
   */
  watch(target: WatchTarget, options?: { signal?: AbortSignal }): AsyncIterable<WatchedJob>;
  /** QUEUED or RUNNING → CANCELLED (a running handler is told through its AbortSignal). */
  cancel(id: string): Promise<JobSummary>;
  /** FAILED or CANCELLED → QUEUED, attempts reset. */
  retry(id: string): Promise<JobSummary>;
  /** One page of the jobs matching a filter, newest first. */
  search(options?: SearchOptions): Promise<SearchPage>;
  /** Cancels every QUEUED or RUNNING job matching the filter (an ADMIN key); returns how many. */
  cancelJobs(filter: JobFilter): Promise<number>;
  /** Retries every FAILED or CANCELLED job matching the filter (an ADMIN key); returns how many. */
  retryJobs(filter: JobFilter): Promise<number>;
  /** Closes the live connection; running watches end. */
  close(): Promise<void>;
}

export function createConveyorClient(options: ConnectionOptions): ConveyorClient {
  const execute = httpExecutor(options);
  const listeners = new Set<LiveSocketEvents>();
  let socket: Client | null = null;
  const openSocket = () =>
    (socket ??= liveSocket(options, {
      onConnected: (wasRetry) => listeners.forEach((listener) => listener.onConnected?.(wasRetry)),
      onClosed: () => listeners.forEach((listener) => listener.onClosed?.()),
    }));

  const get = async (id: string) => (await execute(JobDocument, { id })).job;
  const list = async ({ userId, status = null, first = 20, after = null }: ListOptions): Promise<JobPage> => {
    const { userJobs } = await execute(UserJobsWithResultsDocument, { userId, status, first, after });
    return {
      jobs: userJobs.edges.map((edge) => edge.node),
      nextCursor: userJobs.pageInfo.hasNextPage ? (userJobs.pageInfo.endCursor ?? null) : null,
    };
  };

  return {
    submit: async (input) => (await execute(SubmitJobDocument, { input })).submitJob,
    get,
    list,
    watch: (target, watchOptions = {}) =>
      watchJobs(
        {
          socket: openSocket,
          onConnection: (listener) => {
            listeners.add(listener);
            return () => listeners.delete(listener);
          },
          get,
          listPage: (userId, after, first) => list({ userId, after, first }),
        },
        target,
        watchOptions.signal,
      ),
    cancel: async (id) => (await execute(CancelJobDocument, { id })).cancelJob,
    retry: async (id) => (await execute(RetryJobDocument, { id })).retryJob,
    search: async ({ filter = null, first = 20, after = null } = {}) => {
      const { jobs } = await execute(JobsDocument, { filter, first, after });
      return {
        jobs: jobs.edges.map((edge) => edge.node),
        nextCursor: jobs.pageInfo.hasNextPage ? (jobs.pageInfo.endCursor ?? null) : null,
      };
    },
    cancelJobs: async (filter) => (await execute(CancelJobsDocument, { filter })).cancelJobs.count,
    retryJobs: async (filter) => (await execute(RetryJobsDocument, { filter })).retryJobs.count,
    async close() {
      const closing = socket;
      socket = null;
      if (closing) await closeSocket(closing);
    },
  };
}
