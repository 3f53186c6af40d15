import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { postGraphQL } from '../testing/graphqlClient.js';
import { checkInvariants } from '../testing/invariants.js';
import { freePort } from '../testing/ports.js';
import { spawnConveyor, waitForServer, type ConveyorProcess } from '../testing/processes.js';

const SUBMIT = `mutation ($input: SubmitJobInput!) { submitJob(input: $input) { deduplicated debounced job { id version } } }`;

type Mode = 'UNIQUE_FOR' | 'THROTTLE' | 'DEBOUNCE';
const WEEK_MS = 7 * 86_400_000;

describe('unique keys across server processes', () => {
  let inTest: TestConveyor;
  let other: ConveyorProcess;
  let otherUrl: string;

  beforeAll(async () => {
    // Two servers on one database: this process, and `conveyor serve` as an OS process of its own.
    inTest = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
    const port = await freePort();
    otherUrl = `http://127.0.0.1:${port}/graphql`;
    other = spawnConveyor({
      DATABASE_URL: inTest.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      WORKER_ENABLED: 'false',
      LOG_LEVEL: 'warn',
    });
    await waitForServer(otherUrl, other);
  }, 120_000);
  afterAll(async () => {
    if (other && other.child.exitCode === null) {
      other.child.kill('SIGTERM');
      await other.exited;
    }
    await inTest?.close();
  });

  it('concurrent HTTP submits with one key, half to each server, make one job per key in every mode', async () => {
    const callers = 40;
    const keys = ['k1', 'k2', 'k3'];
    const modes: Mode[] = ['UNIQUE_FOR', 'THROTTLE', 'DEBOUNCE'];
    const calls = modes.flatMap((mode) =>
      keys.flatMap((key) =>
        Array.from({ length: callers }, async (_, i) => {
          // A week (the longest): a throttle's periods are clock-aligned, and with a minute the calls
          // could straddle a minute's end and rightly make two jobs (a loaded CI once did).
          const input = { type: 'echo', userId: `mp-${mode}`, payload: { message: `m${i}` }, unique: { key, forMs: WEEK_MS, mode } };
          const result = await postGraphQL<{
            submitJob: { deduplicated: boolean; debounced: boolean; job: { id: string; version: number } };
          }>(i % 2 === 0 ? inTest.graphqlUrl : otherUrl, { query: SUBMIT, variables: { input } });
          if (!result.data) throw new Error(JSON.stringify(result.errors));
          return { mode, key, ...result.data.submitJob };
        }),
      ),
    );
    const results = await Promise.all(calls);
    for (const mode of modes) {
      for (const key of keys) {
        const mine = results.filter((r) => r.mode === mode && r.key === key);
        expect(new Set(mine.map((r) => r.job.id)).size).toBe(1);
        expect(mine.filter((r) => !r.deduplicated)).toHaveLength(1);
        expect(mine.filter((r) => r.debounced)).toHaveLength(mode === 'DEBOUNCE' ? callers - 1 : 0);
      }
    }
    await withClient(inTest.databaseUrl, async (client) => {
      const { rows } = await client.query<{ user_id: string; unique_key: string; jobs: number; version: number }>(
        `SELECT user_id, unique_key, count(*)::int AS jobs, max(version) AS version FROM jobs WHERE unique_key IS NOT NULL GROUP BY 1, 2`,
      );
      expect(rows).toHaveLength(modes.length * keys.length);
      for (const row of rows) {
        expect(row.jobs).toBe(1);
        // Every debounce bumped the version once: none was lost to a race.
        if (row.user_id === 'mp-DEBOUNCE') expect(row.version).toBe(callers);
      }
    });
    expect(await checkInvariants(inTest.databaseUrl)).toEqual([]);
  }, 120_000);
});
