// @ts-check
// The GraphQL documents the dashboard sends (see schema.graphql at the repository root);
// test/dashboard.operations.test.ts validates each against the schema.

/** @import { FlowGate, FlowJob, FullJob, JobFilter, JobLogLine, JobStatus, JobSummary, Operation, QueueStats, Schedule, ThroughputPoint } from './types.js' */

/**
 * A document with the types of its result and variables; at run time, just the string.
 * @template Result, Variables
 * @param {string} source
 * @returns {Operation<Result, Variables>}
 */
function operation(source) {
  return /** @type {Operation<Result, Variables>} */ (source);
}

/** Cheap fields only: the all-jobs stream selects these so that no event costs a database read. */
const JOB_SUMMARY = `
  id type userId status waitingFor priority attempts maxAttempts lastError
  progress progressMessage version workerId runAt createdAt startedAt completedAt updatedAt tags`;

/** payload and result are read from the database per event, so only the open job selects them. */
const JOB_FULL = `${JOB_SUMMARY} payload result idempotencyKey leaseExpiresAt backoffBaseMs metadata flowRootId dependenciesPending
  queue concurrencyKey expiresAt uniqueKey uniqueMode uniqueUntil
  attemptHistory { attempt startedAt finishedAt workerId outcome error durationMs }`;

/** @type {Operation<{ queueStatsUpdated: QueueStats }, Record<string, never>>} */
export const QUEUE_STATS_UPDATED = operation(`
  subscription DashboardQueueStats {
    queueStatsUpdated { ready waiting scheduled running completed failed cancelled queued total }
  }`);

/** @type {Operation<{ jobUpdated: JobSummary }, Record<string, never>>} */
export const ALL_JOBS_UPDATED = operation(`
  subscription DashboardAllJobs {
    jobUpdated { ${JOB_SUMMARY} }
  }`);

/** @type {Operation<{ jobUpdated: FullJob }, { id: string }>} */
export const ONE_JOB_UPDATED = operation(`
  subscription DashboardOneJob($id: ID!) {
    jobUpdated(id: $id) { ${JOB_FULL} }
  }`);

/** What a node of the open job's flow shows. */
const FLOW_JOB = 'id type status waitingFor version dependenciesPending';

/** @type {Operation<{ flow: { rootId: string, jobs: FlowJob[], edges: { parentId: string, childId: string }[] } | null }, { rootId: string }>} */
export const FLOW = operation(`
  query DashboardFlow($rootId: ID!) {
    flow(rootId: $rootId) { rootId jobs { ${FLOW_JOB} } edges { parentId childId } }
  }`);

/** @type {Operation<{ flowUpdated: FlowJob }, { rootId: string }>} */
export const FLOW_UPDATED = operation(`
  subscription DashboardFlowUpdated($rootId: ID!) {
    flowUpdated(rootId: $rootId) { ${FLOW_JOB} }
  }`);

/** @type {Operation<{ job: FullJob | null }, { id: string }>} */
export const JOB = operation(`
  query DashboardJob($id: ID!) {
    job(id: $id) { ${JOB_FULL} }
  }`);

/**
 * The Running and Recent failures panels, read on open and after every reconnect.
 * @type {Operation<{ recentJobs: JobSummary[] }, { status: JobStatus, first?: number }>}
 */
export const RECENT_JOBS = operation(`
  query DashboardRecentJobs($status: JobStatus!, $first: Int) {
    recentJobs(status: $status, first: $first) { ${JOB_SUMMARY} }
  }`);

/**
 * A job the page may hold in a state it has since left (see loadRecent in main.js).
 * @type {Operation<{ job: JobSummary | null }, { id: string }>}
 */
export const JOB_SUMMARY_BY_ID = operation(`
  query DashboardJobSummary($id: ID!) {
    job(id: $id) { ${JOB_SUMMARY} }
  }`);

/** @type {Operation<{ userJobs: { nodes: JobSummary[] } }, { userId: string, first?: number }>} */
export const USER_JOBS = operation(`
  query DashboardUserJobs($userId: String!, $first: Int) {
    userJobs(userId: $userId, first: $first) { nodes { ${JOB_SUMMARY} } }
  }`);

/** @type {Operation<{ retryJob: JobSummary }, { id: string }>} */
export const RETRY_JOB = operation(`
  mutation DashboardRetryJob($id: ID!) {
    retryJob(id: $id) { ${JOB_SUMMARY} }
  }`);

/** @type {Operation<{ cancelJob: JobSummary }, { id: string }>} */
export const CANCEL_JOB = operation(`
  mutation DashboardCancelJob($id: ID!) {
    cancelJob(id: $id) { ${JOB_SUMMARY} }
  }`);

/**
 * The Search panel: jobs matching a filter, newest first.
 * @type {Operation<{ jobs: { nodes: JobSummary[] } }, { filter: JobFilter, first?: number }>}
 */
export const SEARCH_JOBS = operation(`
  query DashboardSearchJobs($filter: JobFilter, $first: Int) {
    jobs(filter: $filter, first: $first) { nodes { ${JOB_SUMMARY} } }
  }`);

/** @type {Operation<{ cancelJobs: { count: number } }, { filter: JobFilter }>} */
export const CANCEL_JOBS = operation(`
  mutation DashboardCancelJobs($filter: JobFilter!) {
    cancelJobs(filter: $filter) { count }
  }`);

/** @type {Operation<{ retryJobs: { count: number } }, { filter: JobFilter }>} */
export const RETRY_JOBS = operation(`
  mutation DashboardRetryJobs($filter: JobFilter!) {
    retryJobs(filter: $filter) { count }
  }`);

/**
 * The Throughput chart: jobs finished per bucket, of one type or all (admin only).
 * @type {Operation<{ throughput: ThroughputPoint[] }, { since: string, bucketMinutes: number, type: string | null }>}
 */
export const THROUGHPUT = operation(`
  query DashboardThroughput($since: DateTime!, $bucketMinutes: Int!, $type: String) {
    throughput(since: $since, bucketMinutes: $bucketMinutes, type: $type) { at completed failed cancelled }
  }`);

/** The job types the server knows: the Throughput panel's type filter. @type {Operation<{ jobTypes: { name: string }[] }, Record<string, never>>} */
export const JOB_TYPE_NAMES = operation(`
  query DashboardJobTypeNames {
    jobTypes { name }
  }`);

/** What the Schedules panel shows of a schedule. */
const SCHEDULE_FIELDS = `
  name source cron timeZone intervalMs paused nextRuns(count: 3) lastTickAt lastError
  job { type userId } lastJob { id status waitingFor }`;

/** @type {Operation<{ schedules: Schedule[] }, Record<string, never>>} */
export const SCHEDULES = operation(`
  query DashboardSchedules {
    schedules { ${SCHEDULE_FIELDS} }
  }`);

/** @type {Operation<{ pauseSchedule: Schedule }, { name: string }>} */
export const PAUSE_SCHEDULE = operation(`
  mutation DashboardPauseSchedule($name: String!) {
    pauseSchedule(name: $name) { ${SCHEDULE_FIELDS} }
  }`);

/** @type {Operation<{ resumeSchedule: Schedule }, { name: string }>} */
export const RESUME_SCHEDULE = operation(`
  mutation DashboardResumeSchedule($name: String!) {
    resumeSchedule(name: $name) { ${SCHEDULE_FIELDS} }
  }`);

/** @type {Operation<{ deleteSchedule: { name: string } }, { name: string }>} */
export const DELETE_SCHEDULE = operation(`
  mutation DashboardDeleteSchedule($name: String!) {
    deleteSchedule(name: $name) { name }
  }`);

const LOG_LINE = 'seq attempt loggedAt level message fields';

/**
 * A page of the open job's log, oldest first.
 * @type {Operation<{ job: { logsDropped: number, logs: { nodes: JobLogLine[], pageInfo: { hasNextPage: boolean, endCursor: string | null } } } | null }, { id: string, after?: string | null }>}
 */
export const JOB_LOGS = operation(`
  query DashboardJobLogs($id: ID!, $after: String) {
    job(id: $id) { logsDropped logs(first: 100, after: $after) { nodes { ${LOG_LINE} } pageInfo { hasNextPage endCursor } } }
  }`);

/** @type {Operation<{ jobLogAppended: { lines: JobLogLine[] } }, { id: string }>} */
export const JOB_LOG_APPENDED = operation(`
  subscription DashboardJobLogAppended($id: ID!) {
    jobLogAppended(id: $id) { lines { ${LOG_LINE} } }
  }`);

/** What the Queues panel shows of a queue's or job type's gate. */
const GATE_FIELDS =
  'scope name maxRunning paused rateLimit { max intervalMs } used rateUsed ready running waiting waitingFor { reason count } blockedBy';

/** @type {Operation<{ flowGates: FlowGate[] }, Record<string, never>>} */
export const FLOW_GATES = operation(`
  query DashboardFlowGates {
    flowGates { ${GATE_FIELDS} }
  }`);

/** @type {Operation<{ configureQueue: FlowGate }, { name: string, paused?: boolean, maxRunning?: number | null }>} */
export const CONFIGURE_QUEUE = operation(`
  mutation DashboardConfigureQueue($name: String!, $paused: Boolean, $maxRunning: Int) {
    configureQueue(name: $name, paused: $paused, maxRunning: $maxRunning) { ${GATE_FIELDS} }
  }`);

/** @type {Operation<{ configureJobType: FlowGate }, { name: string, paused?: boolean, maxRunning?: number | null }>} */
export const CONFIGURE_JOB_TYPE = operation(`
  mutation DashboardConfigureJobType($name: String!, $paused: Boolean, $maxRunning: Int) {
    configureJobType(name: $name, paused: $paused, maxRunning: $maxRunning) { ${GATE_FIELDS} }
  }`);

/** @type {Operation<{ configureKey: FlowGate }, { name: string, paused?: boolean, maxRunning?: number | null }>} */
export const CONFIGURE_KEY = operation(`
  mutation DashboardConfigureKey($name: String!, $paused: Boolean, $maxRunning: Int) {
    configureKey(name: $name, paused: $paused, maxRunning: $maxRunning) { ${GATE_FIELDS} }
  }`);
