/**
 * Conveyor as a library: `import { createConveyor, defineJobType, defineConfig } from 'conveyor'`.
 * The typed client is 'conveyor/client' and the outside-worker SDK 'conveyor/worker'.
 */
export { defineConfig, type ConveyorConfig } from './configFile.js';
export { defineSchedule, type JobTemplate, type ScheduleDefinition } from './schedules/definition.js';
export type { MissedTickPolicy } from './schedules/missedTicks.js';
export type { Schedules, ScheduleRow } from './schedules/schedules.js';
export { loadConfig, type Config, type SettingName, type Settings } from './config.js';
export { createConveyor, type CreateConveyorOptions, type EmbeddedConveyor } from './library.js';
export { defineJobType, isNonRetryable, NonRetryableError, type JobContext, type JobTypeDefinition } from './jobTypes/jobType.js';
export { JobTypeRegistry } from './jobTypes/registry.js';
export type { ClaimOptions, HeartbeatInput, JobQueue } from './queue/queue.js';
export type { Submitted, SubmitJobInput } from './queue/submissions.js';
export type { QueueCounts } from './queue/sql/reads.js';
export type { JobFilter } from './queue/sql/search.js';
export type { JobAttempt } from './queue/sql/attempts.js';
export type { UserConcurrency } from './queue/queueTypes.js';
export { submitJobInTransaction, type TransactionalSubmit } from './queue/inTransaction.js';
export { UNIQUE_MODES, type FullJobRow, type JobRow, type JobWithPayload, type UniqueMode } from './jobs/columns.js';
export type { UniqueInput } from './queue/uniqueness.js';
export { ATTEMPT_OUTCOME_NAMES, JOB_STATUSES, type AttemptOutcome, type JobStatus } from './jobs/states.js';
export { LIMITS, TAG_PATTERN } from './queue/limits.js';
export {
  ConflictError,
  ConveyorError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  ResponseTooLargeError,
  UnauthenticatedError,
} from './errors.js';
