import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';

export class PostmasterStartError extends Error {}
export class PostmasterStopError extends Error {}

export interface PostmasterOptions {
  binary: string;
  clusterDir: string;
  port: number;
  flags: readonly string[];
  /** Run as this user and group (as root, PostgreSQL runs as `postgres`). */
  ids: { uid?: number; gid?: number };
  logger?: Logger;
}

/** First wait before restarting a PostgreSQL that died, doubled after each failed start up to the maximum. */
const RESTART_DELAY_MS = { first: 500, max: 10_000 };
/** A server that ran at least this long before dying starts over from the first delay. */
const STABLE_AFTER_MS = 10_000;

/**
 * The embedded PostgreSQL server process, restarted whenever it dies while nobody asked it to stop
 * (kill -9, the OOM killer, a crash). It runs in a process group of its own, so that a Ctrl-C in the
 * terminal reaches only Conveyor, which finishes its running jobs before it stops PostgreSQL.
 *
 * After a kill -9 the old server's backends linger until they notice (a few ms to a second), and a
 * new postmaster refuses to start while they hold its shared memory ("pre-existing shared memory
 * block is still in use"): such a failed start is just retried after the next, longer delay.
 */
export class SupervisedPostmaster {
  readonly #options: PostmasterOptions;
  #child: ChildProcess | null = null;
  #starting: Promise<void> | null = null;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | null = null;
  #restartDelayMs = RESTART_DELAY_MS.first;
  #startedAt = 0;
  /** Never leave the server behind if this process exits without stopping it (a crash, process.exit). */
  readonly #stopOnExit = () => {
    try {
      if (this.#child?.pid) process.kill(this.#child.pid, 'SIGINT');
    } catch {
      // already gone
    }
  };

  constructor(options: PostmasterOptions) {
    this.#options = options;
  }

  /** Starts the server and resolves once it accepts connections; rejects if that first start fails. */
  async start(): Promise<void> {
    process.on('exit', this.#stopOnExit);
    this.#starting = this.#spawnUntilReady();
    try {
      await this.#starting;
    } catch (error) {
      process.off('exit', this.#stopOnExit);
      throw error;
    } finally {
      this.#starting = null;
    }
  }

  /** Fast shutdown (SIGINT: disconnects clients without waiting for them), and no more restarts. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    await this.#starting?.catch(() => {});
    process.off('exit', this.#stopOnExit);
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  }

  async #spawnUntilReady(): Promise<void> {
    const { binary, clusterDir, port, flags, ids, logger } = this.#options;
    const child = spawn(binary, ['-D', clusterDir, '-p', String(port), ...flags], {
      ...ids,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        const message = chunk.toString('utf8');
        logger?.trace({ postgres: message.trim() });
        if (output.length < 10_000) output += message;
        if (message.includes('database system is ready to accept connections')) resolve();
      });
      child.once('exit', (code, signal) =>
        reject(new PostmasterStartError(`PostgreSQL exited (${signal ?? `code ${code}`}) while starting:\n${output}`)),
      );
    });
    this.#child = child;
    this.#startedAt = Date.now();
    child.once('exit', (code, signal) => this.#exitedUnasked(child, code, signal));
  }

  #exitedUnasked(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (this.#stopping || this.#child !== child) return;
    this.#child = null;
    if (Date.now() - this.#startedAt >= STABLE_AFTER_MS) this.#restartDelayMs = RESTART_DELAY_MS.first;
    this.#options.logger?.error(
      { postgresPid: child.pid, code, signal, restartInMs: this.#restartDelayMs },
      'embedded PostgreSQL exited unexpectedly: restarting it',
    );
    this.#restartLater();
  }

  #restartLater() {
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(delay * 2, RESTART_DELAY_MS.max);
    this.#restartTimer = setTimeout(() => void this.#restart(), delay);
  }

  async #restart() {
    if (this.#stopping) return;
    this.#starting = this.#spawnUntilReady();
    try {
      await this.#starting;
      this.#options.logger?.warn({ postgresPid: this.#child?.pid }, 'embedded PostgreSQL restarted');
    } catch (error) {
      if (this.#stopping) return;
      this.#options.logger?.warn(
        { err: (error as Error).message, retryInMs: this.#restartDelayMs },
        'embedded PostgreSQL did not restart yet',
      );
      this.#restartLater();
    } finally {
      this.#starting = null;
    }
  }
}

/** The postmaster.pid of a cluster: the server's pid (line 1) and port (line 4), if the file exists. */
export async function readPostmasterPid(clusterDir: string): Promise<{ pid: number; port: number } | null> {
  let text: string;
  try {
    text = await readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && Number.isInteger(port) ? { pid, port } : null;
}

/** True while the process exists and is not a zombie (it may belong to another user, as `postgres` does). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false; // no /proc (macOS): kill(pid, 0) is all there is
  }
  // "pid (comm) state …", where comm may itself contain spaces and parentheses.
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/**
 * Stops a postmaster this process did not start and waits until it is gone: fast shutdown (SIGINT),
 * then immediate shutdown (SIGQUIT) if it is still there after `timeoutMs`.
 */
export async function stopForeignPostmaster(pid: number, timeoutMs = 30_000): Promise<void> {
  for (const signal of ['SIGINT', 'SIGQUIT'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return; // gone already
    }
    const deadline = Date.now() + timeoutMs;
    while (isProcessAlive(pid)) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    if (!isProcessAlive(pid)) return;
  }
  throw new PostmasterStopError(`PostgreSQL (pid ${pid}) did not stop on SIGINT nor on SIGQUIT`);
}
