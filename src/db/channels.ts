/** The NOTIFY channels Conveyor's processes talk over; each process LISTENs on all of them. */
export const CHANNELS = {
  /** Job changes: JSON arrays of events (see jobEvent.ts), sent inside the statements that make them. */
  jobEvents: 'conveyor_job_events',
  /** Job log lines: JSON arrays of lines (see events/jobLogEvent.ts), sent by the statement that appends them. */
  jobLogs: 'conveyor_job_logs',
  /** The id of an API key just revoked: every process drops it from its cache and closes its sockets. */
  apiKeyRevoked: 'conveyor_api_key_revoked',
} as const;
