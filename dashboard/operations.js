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
