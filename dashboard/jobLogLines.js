// @ts-check
// The open job's log lines: what the first read found and what jobLogAppended brought since,
// merged by seq (the subscription starts before the read, so the two overlap), oldest first.

/** @import { JobLogLine } from './types.js' */

/** Lines the page keeps for one job: a job keeps at most JOB_LOG_MAX_LINES anyway (1000 by default). */
const LINES_SHOWN = 2000;

export class JobLogLines {
  /** @type {string | null} */
  jobId = null;
  /** Lines the job dropped over its bound, as the last read said. */
  dropped = 0;
  /** @type {Map<string, JobLogLine>} */
  #bySeq = new Map();
  /** @type {JobLogLine[] | null} the sorted lines, until the next change */
  #sorted = null;

  /** Forgets the lines of the job shown before. @param {string | null} jobId */
  reset(jobId) {
    this.jobId = jobId;
    this.dropped = 0;
    this.#bySeq.clear();
    this.#sorted = null;
  }

  /**
   * Adds lines of `jobId` (a page or a live one); those of another job, or already held, are ignored.
   * @param {string} jobId
   * @param {readonly JobLogLine[]} lines
   */
  add(jobId, lines) {
    if (jobId !== this.jobId) return;
    for (const line of lines) {
      if (this.#bySeq.size >= LINES_SHOWN) return;
      if (!this.#bySeq.has(line.seq)) this.#bySeq.set(line.seq, line);
    }
    this.#sorted = null;
  }

  /** @returns {readonly JobLogLine[]} oldest first (seq is a bigint in a string: compare as one) */
  list() {
    this.#sorted ??= [...this.#bySeq.values()].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    return this.#sorted;
  }
}
