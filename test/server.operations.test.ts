import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobUpdatedDocument, SubmitJobDocument } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { withClient } from '../testing/database.js';
import { connected, createWsClient, executeOk, Recorder } from '../testing/graphqlClient.js';
import { HandlerLog, testJobTypes, waitForStatus } from '../testing/testJobTypes.js';

describe('operations endpoints', () => {
  let conveyor: TestConveyor;
  const log = new HandlerLog();
  beforeAll(async () => {
    conveyor = await startTestConveyor({ jobTypes: testJobTypes(log) });
  });
  afterAll(() => conveyor?.close());

  let lastText = '';
  async function scrape(): Promise<Map<string, PrometheusFamily>> {
    const response = await fetch(`${conveyor.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    lastText = await response.text();
    return new Map(parsePrometheusTextFormat(lastText).map((family) => [family.name, family]));
  }

  const sample = (families: Map<string, PrometheusFamily>, name: string, labels: Record<string, string> = {}) => {
    const family = families.get(name);
    const found = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return found ? Number(found.value ?? found.count) : 0;
  };

  it('/metrics counts jobs as they move, and reports queue depth, durations, subscriptions and event lag', async () => {
    const before = await scrape();
    const ws = createWsClient(conveyor.wsUrl);
    const ready = connected(ws);
    const watching = new Recorder(ws, JobUpdatedDocument, { userId: 'metrics' });
    await ready;
    try {
      const ok = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, { input: { type: 'echo', userId: 'metrics' } });
      const bad = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, { input: { type: 'permanent', userId: 'metrics' } });
      await waitForStatus(conveyor, ok.submitJob.job.id, ['COMPLETED']);
      await waitForStatus(conveyor, bad.submitJob.job.id, ['FAILED']);
      await watching.waitFor((values) => values.length >= 5);

      const after = await scrape();
      const moved = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
      expect(moved('conveyor_jobs_submitted_total', { type: 'echo' })).toBe(1);
      expect(moved('conveyor_jobs_started_total', { type: 'echo' })).toBe(1);
      expect(moved('conveyor_jobs_completed_total', { type: 'echo' })).toBe(1);
      expect(moved('conveyor_jobs_failed_total', { type: 'permanent', final: 'true' })).toBe(1);
      expect(after.get('conveyor_queue_depth')!.type).toBe('GAUGE');
      expect(sample(after, 'conveyor_queue_depth', { state: 'completed' })).toBeGreaterThanOrEqual(1);
      expect(sample(after, 'conveyor_queue_depth', { state: 'failed' })).toBeGreaterThanOrEqual(1);
      expect(after.get('conveyor_claim_duration_seconds')!.type).toBe('HISTOGRAM');
      expect(sample(after, 'conveyor_claim_duration_seconds')).toBeGreaterThan(0);
      // (the parser merges the label sets of a labelled histogram, so this count is read from its line)
      expect(after.get('conveyor_job_run_duration_seconds')!.type).toBe('HISTOGRAM');
      expect(lastText).toContain('conveyor_job_run_duration_seconds_count{type="echo",outcome="completed"} 1');
      expect(sample(after, 'conveyor_subscriptions_open', { field: 'jobUpdated' })).toBe(1);
      expect(sample(after, 'conveyor_event_lag_seconds')).toBeGreaterThan(sample(before, 'conveyor_event_lag_seconds'));
      expect(after.has('conveyor_process_resident_memory_bytes')).toBe(true);
    } finally {
      watching.dispose();
      await ws.dispose();
    }
    await expect.poll(async () => sample(await scrape(), 'conveyor_subscriptions_open', { field: 'jobUpdated' })).toBe(0);
  });

  it('/health/live answers while the process runs; /health/ready also checks the database and migrations', async () => {
    const live = await fetch(`${conveyor.url}/health/live`);
    expect(live.status).toBe(200);
    expect(await (await fetch(`${conveyor.url}/health/ready`)).json()).toEqual({
      status: 'ok',
      database: true,
      pendingMigrations: [],
    });
    await withClient(conveyor.databaseUrl, (client) => client.query(`UPDATE _prisma_migrations SET rolled_back_at = now()`));
    const notReady = await fetch(`${conveyor.url}/health/ready`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { pendingMigrations: string[] }).pendingMigrations.length).toBeGreaterThan(0);
    await withClient(conveyor.databaseUrl, (client) => client.query(`UPDATE _prisma_migrations SET rolled_back_at = NULL`));
  });

  it("returns the caller's x-request-id (or a new one) on GraphQL responses", async () => {
    const request = (headers: Record<string, string>) =>
      fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });
    expect((await request({ 'x-request-id': 'trace-123' })).headers.get('x-request-id')).toBe('trace-123');
    expect((await request({})).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await request({ 'x-request-id': 'not a safe id' })).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves GraphiQL that needs no internet', async () => {
    const page = await (await fetch(conveyor.graphqlUrl, { headers: { accept: 'text/html' } })).text();
    expect(page).toContain('<title>Conveyor</title>');
    expect(page).not.toMatch(/<script[^>]+src="https?:/);
    expect(page).not.toMatch(/<link[^>]+href="https?:/);
  });
});
