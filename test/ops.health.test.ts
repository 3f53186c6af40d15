import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

const PROBES = 600;
/** What startConveyor gives the Prisma pool at the default concurrency of 10: max(10, 10 + 4). */
const POOL_SIZE = 14;

describe('/health/ready under a storm of probes', () => {
  let conveyor: TestConveyor;
  let observer: pg.Client;
  beforeAll(async () => {
    conveyor = await startTestConveyor();
    observer = new pg.Client({ connectionString: conveyor.databaseUrl });
    await observer.connect();
  });
  afterAll(async () => {
    await observer?.end();
    await conveyor?.close();
  });

  const connectionsToTheDatabase = async () =>
    (await observer.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()')).rows[0]!.n;

  it(`answers ${PROBES} concurrent probes with 200 through the pool, never opening connections of its own`, async () => {
    let busiest = await connectionsToTheDatabase();
    let probing = true;
    const watching = (async () => {
      while (probing) {
        busiest = Math.max(busiest, await connectionsToTheDatabase());
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const statuses = await Promise.all(
      Array.from({ length: PROBES }, async () => (await fetch(`${conveyor.url}/health/ready`)).status),
    ).finally(() => (probing = false));
    await watching;

    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    // The pool, the LISTEN connection and this test's own client.
    expect(busiest).toBeLessThanOrEqual(POOL_SIZE + 1 + 1);
  });
});
