import type { JobLogLevel } from '../jobs/logLevels.js';

/**
 * One log line as the append statement publishes it (queue/sql/logs.ts). `id` is the line's seq (a
 * bigint, as text): subscriber streams key events by `id`, and no two lines share one. A line whose
 * text would make its notification too long comes `truncated`, without message and fields; readers
 * fetch it by seq.
 */
export interface JobLogEvent {
  id: string;
  jobId: string;
  seq: string;
  attempt: number;
  loggedAt: Date;
  level: JobLogLevel;
  message?: string;
  fields?: Record<string, unknown> | null;
  truncated: boolean;
}

/** Parses one NOTIFY payload of the job-logs channel (a JSON array of lines). */
export function parseJobLogEvents(payload: string): JobLogEvent[] {
  const raw = JSON.parse(payload) as (Omit<JobLogEvent, 'id' | 'loggedAt'> & { loggedAt: string })[];
  return raw.map((line) => ({ ...line, id: line.seq, loggedAt: new Date(line.loggedAt) }));
}

/** The pubsub topic a job's lines are published on (jobLogAppended listens to it). */
export const jobLogTopic = (jobId: string) => `jobLogs:${jobId}`;
