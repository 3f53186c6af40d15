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
 * (a notification's worth). Lines whose notification left the text out are read by seq. After a lost
 * LISTEN connection the lines since the last one delivered are re-read and merged, by seq, into the
 * next batch, before any line that arrived live after them (lines never change, so seq alone orders
 * and de-duplicates). A subscriber that falls behind by more than its stream holds is cut off
 * (openJobStream): lines are not coalesced.
 */
export function openJobLogFeed(deps: JobLogFeedDeps, jobId: string): AsyncIterableIterator<JobLogBatch> {
  const { bus, queue, logger } = deps;
  const stream = openJobStream<JobLogBatchEvent>(bus.eventTarget, jobLogTopic(jobId), { pacer: bus.deliveries });
  let lastSeq = 0n;
  /** Lines re-read after a reconnect, not yet merged into a batch. */
  let caughtUp: Promise<JobLogLine[]> | null = null;
  let reconnects = 0;
  const stopCatchUp = bus.onReconnect(() => {
    const since = lastSeq;
    caughtUp = readSince(since).catch((error: unknown) => {
      logger.error({ err: error, jobId }, 'job log catch-up failed');
      return [];
    });
    // An empty batch wakes a subscriber waiting for lines, so that the re-read lines go out now.
    stream.push({ id: `catch-up:${++reconnects}`, jobId, lines: [] });
  });

  async function readSince(since: bigint): Promise<JobLogLine[]> {
    const read: JobLogLine[] = [];
    let after = since;
    for (let page = 0; page < CATCH_UP_PAGES; page++) {
      const { lines, hasMore } = await queue.getJobLogs({ id: jobId, afterSeq: after });
      read.push(...lines);
      if (!hasMore || lines.length === 0) break;
      after = BigInt(lines.at(-1)!.seq);
    }
    return read;
  }

  const takeCaughtUp = async () => {
    const pending = caughtUp;
    caughtUp = null;
    return (await pending) ?? [];
  };

  /** The lines not delivered yet, oldest first, with their text (read back when the notification left it out). */
  const newLines = async (batch: JobLogBatchEvent): Promise<JobLogLine[]> => {
    const fresh = batch.lines.filter((line) => BigInt(line.seq) > lastSeq);
    const truncated = fresh.filter((line) => line.truncated).map((line) => line.seq);
    const stored = new Map((await queue.getJobLogLines(jobId, truncated)).map((line) => [line.seq, line]));
    const lines = new Map<string, JobLogLine>();
    for (const line of caughtUp ? await takeCaughtUp() : []) if (BigInt(line.seq) > lastSeq) lines.set(line.seq, line);
    for (const line of fresh) {
      const read = line.truncated ? stored.get(line.seq) : { ...line, message: line.message ?? '', fields: line.fields ?? null };
      if (read) lines.set(line.seq, read); // a truncated line not found: the job was pruned meanwhile
    }
    return [...lines.values()].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
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
        if (lines.length === 0) continue; // nothing this subscriber has not had
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
