import { expect } from 'vitest';

export interface SeenUpdate {
  id: string;
  status: string;
  version: number;
}

/** Groups updates by job, in arrival order. */
export function byJob<T extends SeenUpdate>(updates: readonly T[]): Map<string, T[]> {
  const jobs = new Map<string, T[]>();
  for (const update of updates) jobs.set(update.id, [...(jobs.get(update.id) ?? []), update]);
  return jobs;
}

/**
 * Every change of the job, in order, none twice, none missing: the versions a subscriber saw are
 * exactly 1, 2, 3 … up to the job's last, and the statuses follow the state machine to `finalStatus`.
 */
export function expectCompleteHistory(updates: readonly SeenUpdate[], finalStatus: string) {
  expect(updates.map((u) => u.version)).toEqual(updates.map((_, i) => i + 1));
  expect(updates[0]!.status).toBe('QUEUED');
  expect(updates.at(-1)!.status).toBe(finalStatus);
  const order = ['QUEUED', 'RUNNING', 'COMPLETED'];
  const ranks = updates.map((u) => order.indexOf(u.status));
  expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
}
