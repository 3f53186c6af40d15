// @ts-check
// Every job the page knows about: those loaded by query and those seen on the jobUpdated stream.

/** @import { HistoryEntry, Job, JobStatus, JobSummary } from './types.js' */

/** @type {ReadonlySet<JobStatus>} */
const FINISHED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED']);

/** A page left open on a busy queue would otherwise keep every job it ever saw. */
const MAX_JOBS = 2000;

/**
 * One history entry: what a jobUpdated event said, and when it arrived.
 * @param {JobSummary} job
 * @returns {HistoryEntry}
 */
function historyEntryOf(job) {
  return {
    version: job.version,
    status: job.status,
    attempts: job.attempts,
    progress: job.progress,
    waitingFor: job.waitingFor,
    lastError: job.lastError,
    receivedAt: new Date().toISOString(),
  };
}

export class JobStore {
  /** @type {Map<string, Job>} */
  #jobs = new Map();
  /** @type {Map<string, HistoryEntry[]>} */
  #history = new Map();
  /** @type {Set<() => void>} */
  #listeners = new Set();
  /** @type {(id: string) => boolean} */
  #isPinned;

  /** @param {{ isPinned?: (id: string) => boolean }} options pinned jobs (the open one) are never pruned */
  constructor({ isPinned = () => false } = {}) {
    this.#isPinned = isPinned;
  }

  /**
   * Merges a job read or received. `version` grows with every change, so an older copy (a query
   * answer that raced an event) never overwrites a newer one; an equal version may add fields
   * (payload, result) that the other copy did not select.
   * @param {Job} job
   */
  put(job) {
    const held = this.#jobs.get(job.id);
    if (held && held.version > job.version) return;
    this.#jobs.set(job.id, held && held.version === job.version ? { ...held, ...job } : { ...job });
    this.#prune();
    this.#changed();
  }

  /**
   * A jobUpdated event: kept in the job's history (once per version), then merged.
   * @param {JobSummary} job
   */
  recordUpdate(job) {
    const entries = this.#history.get(job.id) ?? [];
    if (!entries.some((entry) => entry.version === job.version)) {
      entries.push(historyEntryOf(job));
      entries.sort((a, b) => a.version - b.version);
      this.#history.set(job.id, entries);
    }
    this.put(job);
  }

  /**
   * A job the server no longer has.
   * @param {string} id
   */
  forget(id) {
    if (!this.#jobs.delete(id)) return;
    this.#history.delete(id);
    this.#changed();
  }

  /** @param {string} id */
  get(id) {
    return this.#jobs.get(id);
  }

  /**
   * Jobs matching `predicate`, in `compare` order (most recently changed first by default).
   * @param {(job: Job) => boolean} predicate
   * @param {(a: Job, b: Job) => number} [compare]
   */
  list(predicate, compare = (a, b) => b.updatedAt.localeCompare(a.updatedAt)) {
    return [...this.#jobs.values()].filter(predicate).sort(compare);
  }

  /**
   * The jobUpdated events received for this job since the page opened, oldest first.
   * @param {string} id
   */
  history(id) {
    return this.#history.get(id) ?? [];
  }

  /**
   * Calls `listener` after every change; returns a function that stops it.
   * @param {() => void} listener
   */
  onChange(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed() {
    for (const listener of this.#listeners) listener();
  }

  /** Forgets the longest-finished jobs first; queued and running ones are what the page is for. */
  #prune() {
    if (this.#jobs.size <= MAX_JOBS) return;
    const finished = [...this.#jobs.values()]
      .filter((job) => FINISHED.has(job.status) && !this.#isPinned(job.id))
      .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt));
    for (const job of finished.slice(0, this.#jobs.size - MAX_JOBS)) {
      this.#jobs.delete(job.id);
      this.#history.delete(job.id);
    }
  }
}
