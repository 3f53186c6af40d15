import type { Logger } from '../logger.js';
import type { JobQueue } from '../queue/queue.js';
import type { JobLogLine } from '../queue/sql/logs.js';
import type { JobEventBus } from './jobEventBus.js';
import { jobLogTopic, type JobLogBatchEvent } from './jobLogEvent.js';
import { openJobStream } from './jobStream.js';

export interface JobLogFeedDeps {
  bus: Pick<JobEventBus, 'eventTarget' | 'deliveries' | 'onReconnect'>;
  /** For lines a notification carried without their text, and the catch-up after a lost LISTEN connection. */
  queue: Pick<JobQueue, 'getJobLogs' | 'getJobLogLines'>;
  logger: Logger;
}

/** What a feed yields: lines of one job, oldest first, that the subscriber has not had yet. */
export interface JobLogBatch {
  jobId: string;
  lines: JobLogLine[];
}

/** Pages of lines re-read after a lost LISTEN connection, at most. */
const CATCH_UP_PAGES = 10;

/**
 * The log lines one job appends from now on, for one subscriber, oldest first, each once, in batches
 * (a notification's worth). Lines whose notification left the text out are read by seq; after a lost
 * LISTEN connection the lines since the last one delivered are re-read (lines never change, so seq
 * alone de-duplicates). A subscriber that falls behind by more than its stream holds is cut off
 * (openJobStream): lines are not coalesced.
 */
export function openJobLogFeed(deps: JobLogFeedDeps, jobId: string): AsyncIterableIterator<JobLogBatch> {
  const { bus, queue, logger } = deps;
  const stream = openJobStream<JobLogBatchEvent>(bus.eventTarget, jobLogTopic(jobId), { pacer: bus.deliveries });
  let lastSeq = 0n;
  const stopCatchUp = bus.onReconnect(() => {
    void (async () => {
      let after = lastSeq;
      for (let page = 0; page < CATCH_UP_PAGES; page++) {
        const { lines, hasMore } = await queue.getJobLogs({ id: jobId, afterSeq: after });
        if (lines.length > 0) stream.push({ id: lines[0]!.seq, jobId, lines: lines.map((line) => ({ ...line, truncated: false })) });
        if (!hasMore || lines.length === 0) return;
        after = BigInt(lines.at(-1)!.seq);
      }
    })().catch((error: unknown) => logger.error({ err: error, jobId }, 'job log catch-up failed'));
  });

  /** The batch's lines not delivered yet, with their text (read back when the notification left it out). */
  const newLines = async (batch: JobLogBatchEvent): Promise<JobLogLine[]> => {
    const fresh = batch.lines.filter((line) => BigInt(line.seq) > lastSeq);
    const truncated = fresh.filter((line) => line.truncated).map((line) => line.seq);
    const stored = new Map((await queue.getJobLogLines(jobId, truncated)).map((line) => [line.seq, line]));
    return fresh.flatMap((line) => {
      if (!line.truncated) return [{ ...line, message: line.message ?? '', fields: line.fields ?? null }];
      const read = stored.get(line.seq);
      return read ? [read] : []; // the job was pruned meanwhile
    });
  };

  return {
    async next() {
      for (;;) {
        const result = await stream.next();
        if (result.done) {
          stopCatchUp();
          return result;
        }
        const lines = await newLines(result.value);
        if (lines.length === 0) continue; // a catch-up re-read what a notification brought too
        lastSeq = BigInt(lines.at(-1)!.seq);
        return { value: { jobId, lines }, done: false };
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
