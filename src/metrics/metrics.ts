import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PublishedJobEvent } from '../events/jobEvent.js';
import type { JobRow } from '../jobs/columns.js';
import type { JobQueue } from '../queue/queue.js';
import type { QueueObserver } from '../queue/queueTypes.js';

/**
 * Conveyor's Prometheus metrics, one registry per process. Job counters count what this process did
 * (so a sum over processes counts each job once); queue depth is read from PostgreSQL at scrape time.
 */
export class ConveyorMetrics implements QueueObserver {
  readonly registry = new Registry();

  readonly #submitted = new Counter({
    name: 'conveyor_jobs_submitted_total',
    help: 'Jobs submitted through this process.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly #started = new Counter({
    name: 'conveyor_jobs_started_total',
    help: 'Jobs claimed (attempts started) by this process, built-in worker or dequeue.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly #completed = new Counter({
    name: 'conveyor_jobs_completed_total',
    help: 'Jobs completed through this process.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly #failed = new Counter({
    name: 'conveyor_jobs_failed_total',
    help: 'Failed attempts recorded by this process; final="true" when the job is FAILED, "false" when it will be retried.',
    labelNames: ['type', 'final'],
    registers: [this.registry],
  });
  readonly #cancelled = new Counter({
    name: 'conveyor_jobs_cancelled_total',
    help: 'Jobs cancelled through this process.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly #claimDuration = new Histogram({
    name: 'conveyor_claim_duration_seconds',
    help: 'Time of one claim statement (a batch of jobs).',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly #runDuration = new Histogram({
    name: 'conveyor_job_run_duration_seconds',
    help: "Time the built-in worker spent in a job's handler.",
    labelNames: ['type', 'outcome'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly #subscriptions = new Gauge({
    name: 'conveyor_subscriptions_open',
    help: 'GraphQL subscriptions open on this process.',
    labelNames: ['field'],
    registers: [this.registry],
  });
  readonly #eventLag = new Histogram({
    name: 'conveyor_event_lag_seconds',
    help: "From a job change's commit (its updatedAt) to this process receiving its event.",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'conveyor_' });
  }

  /** Queue depth by state, read from the database when Prometheus scrapes. */
  watchQueueDepth(queue: JobQueue) {
    new Gauge({
      name: 'conveyor_queue_depth',
      help: 'Jobs by state (QUEUED split into ready, waiting for a user slot, and scheduled).',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = await queue.queueStats();
        for (const [state, value] of Object.entries(counts)) this.set({ state }, value);
      },
    });
  }

  jobsSubmitted(jobs: readonly JobRow[]) {
    for (const job of jobs) this.#submitted.inc({ type: job.type });
  }

  jobsClaimed(jobs: readonly JobRow[], seconds: number) {
    this.#claimDuration.observe(seconds);
    for (const job of jobs) this.#started.inc({ type: job.type });
  }

  jobsCompleted(jobs: readonly Pick<JobRow, 'type'>[]) {
    for (const job of jobs) this.#completed.inc({ type: job.type });
  }

  jobsFailed(jobs: readonly JobRow[]) {
    for (const job of jobs) this.#failed.inc({ type: job.type, final: String(job.status === 'FAILED') });
  }

  jobsCancelled(jobs: readonly JobRow[]) {
    for (const job of jobs) this.#cancelled.inc({ type: job.type });
  }

  jobRan(type: string, outcome: 'completed' | 'failed' | 'cancelled', seconds: number) {
    this.#runDuration.observe({ type, outcome }, seconds);
  }

  subscriptionOpened(field: string) {
    this.#subscriptions.inc({ field });
  }

  subscriptionClosed(field: string) {
    this.#subscriptions.dec({ field });
  }

  eventsReceived(events: readonly PublishedJobEvent[]) {
    const now = Date.now();
    for (const event of events) this.#eventLag.observe(Math.max(0, now - event.updatedAt.getTime()) / 1000);
  }
}
