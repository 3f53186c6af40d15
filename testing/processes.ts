import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The demo config (echo, sleep, send_email) that `npm start` runs: what every spawned process knows. */
export const DEMO_CONFIG = fileURLToPath(new URL('../examples/demo.config.ts', import.meta.url));

export interface ConveyorProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (and the signal that ended it, if any). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `src/cli.ts serve` (what `npm start` runs) as a separate OS process with the given environment. */
export function spawnConveyor(
  env: Record<string, string>,
  entry = 'src/cli.ts',
  args = ['serve'],
  options: { detached?: boolean } = {},
): ConveyorProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    // detached: a process group of its own, as a terminal gives a command (for Ctrl-C tests)
    detached: options.detached ?? false,
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', AUTH_DISABLED: 'true', CONVEYOR_CONFIG: DEMO_CONFIG, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, options.detached ?? false);
}

/** Children spawned through this module that have not exited yet (what endLeftoverProcesses ends). */
const live = new Map<ChildProcess, { detached: boolean }>();

function track(child: ChildProcess, detached: boolean): ConveyorProcess {
  if (child.pid !== undefined) live.set(child, { detached });
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child)); // never started, or a signal it could not be sent
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/**
 * Ends the processes this module spawned that are still running: a test that failed before its own
 * cleanup once left a server (and its embedded PostgreSQL) running through the rest of the suite.
 * SIGTERM first, so that a server stops the PostgreSQL it started; SIGKILL to the process group
 * after `graceMs`. Returns how many were left.
 */
export async function endLeftoverProcesses(graceMs = 10_000): Promise<number> {
  const left = [...live];
  const exited = left.map(([child]) => new Promise((resolve) => child.once('exit', resolve)));
  const signal = ([child, { detached }]: (typeof left)[number], name: NodeJS.Signals) => {
    try {
      // A detached child leads a process group of its own: its children go with it.
      process.kill(detached ? -child.pid! : child.pid!, name);
    } catch {
      // gone already
    }
  };
  for (const entry of left) signal(entry, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise((resolve) => (timer = setTimeout(resolve, graceMs)));
  await Promise.race([Promise.all(exited), graceOver]);
  clearTimeout(timer);
  for (const entry of live) signal(entry, 'SIGKILL');
  await Promise.all(exited);
  return left.length;
}

/** Polls the GraphQL health query until the server answers. */
export async function waitForServer(graphqlUrl: string, process?: ConveyorProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process && process.child.exitCode !== null) throw new Error(`process exited early:\n${process.output()}`);
    try {
      const response = await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`server at ${graphqlUrl} did not come up:\n${process?.output() ?? ''}`);
}

/** Starts `npm start` in the repository, in a process group of its own (as a terminal runs a command). */
export function spawnNpmStart(env: Record<string, string>): ConveyorProcess {
  return spawnCommand('npm', ['start'], env);
}

/** Runs a command in the repository, in a process group of its own (as a terminal runs a command). */
export function spawnCommand(command: string, args: string[], env: Record<string, string>): ConveyorProcess {
  const child = spawn(command, args, {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    detached: true,
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', CONVEYOR_CONFIG: DEMO_CONFIG, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, true);
}

/** The pid of the postmaster running from `<dataDir>/pg` (the first line of its postmaster.pid), or null. */
export async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    return Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return null;
  }
}

/** True while a process with this pid exists (and is not a zombie waiting to be reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: kill(pid, 0) is all there is
  }
}

/** True if nothing accepts TCP connections on 127.0.0.1:port. */
export function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** The status of GET /health/ready, or 0 when nothing answers. */
export async function readyStatus(baseUrl: string): Promise<number> {
  try {
    return (await fetch(`${baseUrl}/health/ready`)).status;
  } catch {
    return 0;
  }
}

/** Kills every process left in the group `pgid` (cleanup after a test whose process tree misbehaved). */
export function killGroup(pgid: number) {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** SIGKILLs whichever of these processes are left (cleanup after a failed test) and waits until they are gone. */
export async function killAndWait(pids: number[], timeoutMs = 10_000) {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
}
