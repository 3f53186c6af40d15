import type { JobRow } from '../jobs/columns.js';
import type { StatementSettings } from './sql/fragments.js';

/** The queue's configuration (config.scheduling). */
export interface QueueSettings extends StatementSettings {
  defaultMaxAttempts: number;
  leaseSeconds: number;
  /** Largest payload (and result) accepted, as JSON bytes. */
  maxPayloadBytes: number;
  /** Log lines a job keeps; later ones are dropped and counted. */
  maxLogLinesPerJob: number;
}

/**
 * Told what this process's queue did (metrics, logs). Each transition is reported once, by the
 * process that made it, so summing over processes counts every job once.
 */
export interface QueueObserver {
  jobsSubmitted?(jobs: readonly JobRow[]): void;
  jobsClaimed?(jobs: readonly JobRow[], seconds: number): void;
  jobsCompleted?(jobs: readonly Pick<JobRow, 'type'>[]): void;
  /** Failed attempts, whether re-queued for a retry (status QUEUED) or final (FAILED). */
  jobsFailed?(jobs: readonly JobRow[]): void;
  jobsCancelled?(jobs: readonly JobRow[]): void;
}

/** A claim's proof: the job and the lease token that the claim handed out. */
export interface Lease {
  id: string;
  leaseToken: string;
}

export interface UserConcurrency {
  userId: string;
  /** Null: the user has no limit. */
  limit: number | null;
  /** Whether the limit is the user's own or the configured default. */
  isDefault: boolean;
  running: number;
}
