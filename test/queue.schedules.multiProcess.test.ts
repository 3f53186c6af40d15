import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, withClient } from '../testing/database.js';
import { checkInvariants } from '../testing/invariants.js';
import { killAndWait, spawnConveyor, type ConveyorProcess } from '../testing/processes.js';

const source = (file: string) => fileURLToPath(new URL(`../${file}`, import.meta.url));

/** A project's config file: the demo types and one schedule ticking every second (a seconds cron). */
const CONFIG = `
import { defineConfig, defineSchedule } from ${JSON.stringify(source('src/index.ts'))};
import { demoJobTypes } from ${JSON.stringify(source('examples/demoJobTypes.ts'))};

export default defineConfig({
  jobTypes: demoJobTypes,
  schedules: [
    defineSchedule({
      name: 'every-second',
      cron: '* * * * * *',
      job: { type: 'echo', userId: 'ticker', payload: { message: 'tick' } },
      // No tick may be lost while every process is down for the restart.
      missedTicks: 'RUN_EACH',
      maxCatchUp: 120,
    }),
  ],
});
`;

describe('a schedule fired by four processes', () => {
  let database: { url: string; drop: () => Promise<void> };
  let folder: string;
  const processes: ConveyorProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    folder = mkdtempSync(path.join(tmpdir(), 'conveyor-schedules-'));
    writeFileSync(path.join(folder, 'conveyor.config.ts'), CONFIG);
  });
  afterAll(async () => {
    await killAndWait(processes.flatMap((p) => (p.child.pid ? [p.child.pid] : [])));
    await database?.drop();
    rmSync(folder, { recursive: true, force: true });
  });

  const startFour = () =>
    Array.from({ length: 4 }, () => {
      const process = spawnConveyor(
        {
          DATABASE_URL: database.url,
          CONVEYOR_CONFIG: path.join(folder, 'conveyor.config.ts'),
          MAINTENANCE_INTERVAL_MS: '200',
          WORKER_POLL_INTERVAL_MS: '200',
          // info: for the "Conveyor ready" line.
          LOG_LEVEL: 'info',
        },
        'src/cli.ts',
        ['worker'],
      );
      processes.push(process);
      return process;
    });

  /** Each tick's jobs: the tick (its runAt, in ms since the epoch) and how many jobs it has. */
  const ticks = () =>
    withClient(
      database.url,
      async (client) =>
        (
          await client.query<{ tick: number; jobs: number }>(
            `SELECT (extract(epoch FROM run_at) * 1000)::float8 AS tick, count(*)::int AS jobs
             FROM jobs WHERE type = 'echo' AND user_id = 'ticker' GROUP BY run_at ORDER BY run_at`,
          )
        ).rows,
    );

  async function untilTicks(count: number, what: string) {
    await until(async () => (await ticks()).length >= count, what);
  }

  async function until(check: () => boolean | Promise<boolean>, what: string) {
    // Four processes compiling the TypeScript sources at once, beside the rest of the suite on two
    // cores: once they wrote nothing for 40 s (they had not started yet).
    const deadline = Date.now() + 90_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${processes.map((p) => p.output()).join('\n')}`);
      await sleep(100);
    }
  }

  it('makes exactly one job per tick, with no gap, across a restart of every process in the middle of a tick', async () => {
    const first = startFour();
    await untilTicks(3, 'three ticks from the first four processes');
    // Half a second into a tick window: a pass may be between making a job and moving the schedule.
    await sleep((1500 - (Date.now() % 1000)) % 1000);
    await killAndWait(first.map((p) => p.child.pid!));
    const beforeRestart = (await ticks()).length;

    const second = startFour();
    await untilTicks(beforeRestart + 4, 'four more ticks after the restart');
    // Stopped once up: a signal that comes during start-up ends the process at once.
    await until(() => second.every((p) => p.output().includes('Conveyor ready')), 'the second four processes to be ready');
    for (const process of second) process.child.kill('SIGTERM');
    for (const process of second) expect((await process.exited).code).toBe(0);

    const made = await ticks();
    expect(made.filter((tick) => tick.jobs !== 1)).toEqual([]);
    const gaps = made.slice(1).filter((tick, i) => tick.tick - made[i]!.tick !== 1000);
    expect(gaps).toEqual([]);
    expect(await checkInvariants(database.url)).toEqual([]);
  }, 240_000);
});
