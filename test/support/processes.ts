import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

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
    env: { ...process.env, LOG_LEVEL: 'info', LOG_PRETTY: 'false', AUTH_DISABLED: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

/** Polls the GraphQL health query until the server answers. */
export async function waitForServer(graphqlUrl: string, process?: ConveyorProcess, timeoutMs = 30_000) {
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
