import type { JobLogLevel } from '../jobs/logLevels.js';

/**
 * One log line as the append statement publishes it (queue/sql/logs.ts), `seq` a bigint as text. A
 * line whose text would make its notification too long comes `truncated`, without message and
 * fields; readers fetch it by seq.
 */
export interface JobLogEvent {
  jobId: string;
  seq: string;
  attempt: number;
  loggedAt: Date;
  level: JobLogLevel;
  message?: string;
  fields?: Record<string, unknown> | null;
  truncated: boolean;
}

/**
 * The lines of one job that one notification carried, oldest first: what the bus publishes and a
 * subscriber receives as one event, since at 100 lines a second per job one event per line would cost
 * the server a GraphQL execution and a socket write per line per subscriber (bench scenario 8).
 * `id` is the first line's seq: subscriber streams key events by it, and no two batches share one.
 */
export interface JobLogBatchEvent {
  id: string;
  jobId: string;
  lines: JobLogEvent[];
}

/** Parses one NOTIFY payload of the job-logs channel (a JSON array of lines) into a batch per job. */
export function parseJobLogEvents(payload: string): JobLogBatchEvent[] {
  const raw = JSON.parse(payload) as (Omit<JobLogEvent, 'loggedAt'> & { loggedAt: string })[];
  const byJob = new Map<string, JobLogBatchEvent>();
  for (const line of raw) {
    const event = { ...line, loggedAt: new Date(line.loggedAt) };
    const batch = byJob.get(line.jobId);
    if (batch) batch.lines.push(event);
    else byJob.set(line.jobId, { id: line.seq, jobId: line.jobId, lines: [event] });
  }
  return [...byJob.values()];
}

/** The pubsub topic a job's lines are published on (jobLogAppended listens to it). */
export const jobLogTopic = (jobId: string) => `jobLogs:${jobId}`;
