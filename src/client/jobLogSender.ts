import type { Logger } from 'pino';
import type { JobContext } from '../jobTypes/jobType.js';
import { LIMITS } from '../queue/limits.js';
import { checkLogLine } from '../queue/logLines.js';
import { LogBuffer } from '../worker/logBuffer.js';
import type { JobLogLineInput } from './generated/graphql.js';
import type { Lease, WorkerApi } from './workerApi.js';

/**
 * Bytes of lines (as JSON) per appendJobLogs request at most, well under the server's request body
 * limit (REQUEST_BODY_LIMIT_BYTES, 1 MiB by default). Batched by count only, 400 lines near their
 * bounds made one 1.6 MB request: the server closed the connection, and every line was lost.
 */
const REQUEST_LINE_BYTES = 256 * 1024;

/** A job's lines in order, in requests of at most REQUEST_LINE_BYTES each (a line over it alone). */
function inRequests(lines: JobLogLineInput[]): JobLogLineInput[][] {
  const requests: JobLogLineInput[][] = [];
  let bytes = Infinity;
  for (const line of lines) {
    const size = Buffer.byteLength(JSON.stringify(line));
    if (bytes + size > REQUEST_LINE_BYTES) {
      requests.push([]);
      bytes = 0;
    }
    requests.at(-1)!.push(line);
    bytes += size;
  }
  return requests;
}

/** A ctx.log line waiting in the buffer, with the lease it is appended under. */
interface BufferedLogLine {
  lease: Lease;
  line: JobLogLineInput;
}

/**
 * The SDK worker's side of job logs: each handler's `ctx.log` checks its line as the server would
 * and buffers it (src/worker/logBuffer.ts); a flush sends one appendJobLogs request per job, the jobs
 * at once.
 */
export class JobLogSender {
  readonly #api: WorkerApi;
  readonly #logger: Logger;
  readonly #buffer: LogBuffer<BufferedLogLine>;

  constructor(api: WorkerApi, logger: Logger) {
    this.#api = api;
    this.#logger = logger;
    this.#buffer = new LogBuffer({
      write: (lines) => this.#send(lines),
      onError: (error, lines) => this.#logger.warn({ err: error, lines }, 'job log lines dropped'),
      batchSize: LIMITS.logBatch,
    });
  }

  /** The `log` of one run's context; `onLog` hears that the run logged (its lines go before its outcome). */
  logFor(lease: Lease, onLog: () => void): JobContext['log'] {
    return (level, message, fields) => {
      const { fieldsJson: _json, loggedAt, ...line } = checkLogLine({ level: level.toUpperCase(), message, fields });
      onLog();
      this.#buffer.add({ lease, line: { ...line, fields: fields ?? null, loggedAt: loggedAt.toISOString() } });
    };
  }

  /** Sends every line buffered so far; resolves once they are sent (or dropped). */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  async #send(buffered: BufferedLogLine[]) {
    const byJob = new Map<string, BufferedLogLine[]>();
    for (const item of buffered) {
      const lines = byJob.get(item.lease.id);
      if (lines) lines.push(item);
      else byJob.set(item.lease.id, [item]);
    }
    // A job no longer held ('lost') has its lines refused: its handler hears of it from the heartbeat.
    // A request that fails drops that job's lines only (a late line is worth less than a worker that
    // keeps up, so nothing retries it).
    await Promise.all(
      [...byJob.values()].map(async (items) => {
        const lease = items[0]!.lease;
        // One job's requests one after another: its lines keep their order.
        for (const lines of inRequests(items.map((item) => item.line))) {
          await this.#api
            .appendLogs(lease, lines)
            .catch((error: unknown) => this.#logger.warn({ err: error, jobId: lease.id, lines: lines.length }, 'job log lines dropped'));
        }
      }),
    );
  }
}
