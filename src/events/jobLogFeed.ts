import type { Logger } from '../logger.js';
import type { JobQueue } from '../queue/queue.js';
import type { JobLogLine } from '../queue/sql/logs.js';
import type { JobEventBus } from './jobEventBus.js';
import { jobLogTopic, type JobLogEvent } from './jobLogEvent.js';
import { openJobStream } from './jobStream.js';

export interface JobLogFeedDeps {
  bus: Pick<JobEventBus, 'eventTarget' | 'deliveries' | 'onReconnect'>;
  /** For lines a notification carried without their text, and the catch-up after a lost LISTEN connection. */
  queue: Pick<JobQueue, 'getJobLogs' | 'getJobLogLines'>;
  logger: Logger;
}

/** Lines re-read after a lost LISTEN connection, at most (a page of the job's log per call). */
const CATCH_UP_PAGES = 10;

/**
 * The log lines one job appends from now on, for one subscriber, oldest first, each once. Lines whose
 * notification left the text out are read by seq; after a lost LISTEN connection the lines since the
 * last one delivered are re-read (lines are never changed, so seq alone de-duplicates). A subscriber
 * that falls behind by more than its stream holds is cut off (openJobStream): lines are not coalesced.
 */
export function openJobLogFeed(deps: JobLogFeedDeps, jobId: string): AsyncIterableIterator<JobLogLine> {
  const { bus, queue, logger } = deps;
  const stream = openJobStream<JobLogEvent>(bus.eventTarget, jobLogTopic(jobId), { pacer: bus.deliveries });
  let lastSeq = 0n;
  const stopCatchUp = bus.onReconnect(() => {
    void (async () => {
      let after = lastSeq;
      for (let page = 0; page < CATCH_UP_PAGES; page++) {
        const { lines, hasMore } = await queue.getJobLogs({ id: jobId, afterSeq: after });
        for (const line of lines) stream.push({ ...line, id: line.seq, truncated: false });
        if (!hasMore || lines.length === 0) return;
        after = BigInt(lines.at(-1)!.seq);
      }
    })().catch((error: unknown) => logger.error({ err: error, jobId }, 'job log catch-up failed'));
  });

  const withText = async (line: JobLogEvent): Promise<JobLogLine | null> => {
    if (!line.truncated) return { ...line, message: line.message ?? '', fields: line.fields ?? null };
    const [stored] = await queue.getJobLogLines(jobId, [line.seq]);
    return stored ?? null; // the job was pruned meanwhile
  };

  return {
    async next() {
      for (;;) {
        const result = await stream.next();
        if (result.done) {
          stopCatchUp();
          return result;
        }
        const seq = BigInt(result.value.seq);
        if (seq <= lastSeq) continue; // a catch-up re-read what a notification brought too
        const line = await withText(result.value);
        if (!line) continue;
        lastSeq = seq;
        return { value: line, done: false };
      }
    },
    async return() {
      stopCatchUp();
      await stream.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
