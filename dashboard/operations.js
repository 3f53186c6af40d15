// The GraphQL documents the dashboard sends (see schema.graphql at the repository root).

/** Cheap fields only: the all-jobs stream selects these so that no event costs a database read. */
const JOB_SUMMARY = `
  id type userId status waitingFor priority attempts maxAttempts lastError
  progress progressMessage version workerId runAt createdAt startedAt completedAt updatedAt`;

/** payload and result are read from the database per event, so only the open job selects them. */
const JOB_FULL = `${JOB_SUMMARY} payload result idempotencyKey leaseExpiresAt backoffBaseMs`;

export const QUEUE_STATS_UPDATED = `
  subscription DashboardQueueStats {
    queueStatsUpdated { ready waiting scheduled running completed failed cancelled queued total }
  }`;

export const ALL_JOBS_UPDATED = `
  subscription DashboardAllJobs {
    jobUpdated { ${JOB_SUMMARY} }
  }`;

export const ONE_JOB_UPDATED = `
  subscription DashboardOneJob($id: ID!) {
    jobUpdated(id: $id) { ${JOB_FULL} }
  }`;

export const JOB = `
  query DashboardJob($id: ID!) {
    job(id: $id) { ${JOB_FULL} }
  }`;

/** The Running and Recent failures panels, read on open and after every reconnect. */
export const RECENT_JOBS = `
  query DashboardRecentJobs($status: JobStatus!, $first: Int) {
    recentJobs(status: $status, first: $first) { ${JOB_SUMMARY} }
  }`;

/** A job the page may hold in a state it has since left (see loadRecent in main.js). */
export const JOB_SUMMARY_BY_ID = `
  query DashboardJobSummary($id: ID!) {
    job(id: $id) { ${JOB_SUMMARY} }
  }`;

export const USER_JOBS = `
  query DashboardUserJobs($userId: String!, $first: Int) {
    userJobs(userId: $userId, first: $first) { nodes { ${JOB_SUMMARY} } }
  }`;

export const RETRY_JOB = `
  mutation DashboardRetryJob($id: ID!) {
    retryJob(id: $id) { ${JOB_SUMMARY} }
  }`;

export const CANCEL_JOB = `
  mutation DashboardCancelJob($id: ID!) {
    cancelJob(id: $id) { ${JOB_SUMMARY} }
  }`;
