/**
 * Configuration every test harness starts from: quiet logs (TEST_LOG_LEVEL to see them) and quick
 * timers, so that tests do not wait on a poll or a maintenance interval.
 */
export const TEST_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  LOG_PRETTY: 'false',
  WORKER_POLL_INTERVAL_MS: '200',
  MAINTENANCE_INTERVAL_MS: '200',
  BACKOFF_BASE_MS: '100',
};
