/** The levels a job log line carries, lowest first: the GraphQL enum JobLogLevel and the SQL enum job_log_level. */
export const JOB_LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type JobLogLevel = (typeof JOB_LOG_LEVELS)[number];
