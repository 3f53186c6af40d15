import type { WorkerQueue } from '../src/queue/workerQueue.js';

/**
 * `queue` with some of its methods replaced (to count a test's calls, say); every other one is the
 * queue's own, bound to it (the trusted queue keeps private fields, so an unbound method would fail).
 */
export function overriding(queue: WorkerQueue, overrides: Partial<WorkerQueue>): WorkerQueue {
  return new Proxy(queue, {
    get: (target, property) => {
      const own: unknown = Reflect.get(overrides, property);
      if (own !== undefined) return own;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
