import { mkdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page, type WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthDocument, SubmitJobDocument } from '../src/client/generated/graphql.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';
import { executeOk } from '../testing/graphqlClient.js';
import { jobInState } from '../testing/jobInState.js';

// Debian's Chromium, not a browser downloaded by Playwright: the tests run offline.
const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
const SCREENSHOT = fileURLToPath(new URL('../test-results/dashboard.png', import.meta.url));

/** A GET with the path sent exactly as written (fetch would normalise `..` away). */
function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    httpRequest({ hostname, port, path, method: 'GET' }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

describe('the dashboard', () => {
  let conveyor: TestConveyor;
  let browser: Browser;
  let page: Page;
  const pageProblems: string[] = [];
  const requestedUrls: string[] = [];

  /** A page that records its script errors and every URL it asks for; `prepare` runs before it loads. */
  async function openDashboard(prepare?: (opened: Page) => Promise<void>): Promise<Page> {
    const opened = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    await prepare?.(opened);
    opened.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
    opened.on('console', (message) => {
      if (message.type() === 'error') pageProblems.push(`console: ${message.text()}`);
    });
    opened.on('request', (request) => requestedUrls.push(request.url()));
    await opened.goto(`${conveyor.url}/dashboard`);
    await opened.locator('#connection[data-state="connected"]').waitFor();
    return opened;
  }

  const stat = (name: string) => page.locator(`[data-stat="${name}"] dd`);
  const itemIn = (panel: string, jobId: string) => page.locator(`#${panel} [data-job-id="${jobId}"]`);
  const statusOf = async (jobId: string) => (await conveyor.queue.getJob(jobId))?.status;

  beforeAll(async () => {
    // No built-in worker: the test claims and fails jobs itself, so it decides every transition.
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
    browser = await chromium.launch(CHROMIUM);
    page = await openDashboard();
  });
  afterAll(async () => {
    await browser?.close();
    await conveyor?.close();
  });

  it('is served by the Conveyor server itself, with nothing from the internet', async () => {
    const index = await fetch(`${conveyor.url}/dashboard`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await index.text();
    expect(html).not.toMatch(/(?:src|href)\s*=\s*["']?\s*https?:\/\//i);
    expect(html).not.toContain('http://');
    expect(html).not.toContain('https://');
    expect(await (await fetch(`${conveyor.url}/dashboard/`)).text()).toBe(html);

    const vendor = await fetch(`${conveyor.url}/dashboard/vendor/graphql-ws.js`);
    expect(vendor.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await vendor.text()).toContain('graphqlWs');
    expect((await fetch(`${conveyor.url}/dashboard/main.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${conveyor.url}/dashboard/styles.css`)).headers.get('content-type')).toMatch(/^text\/css/);

    expect(await rawGet(conveyor.url!, '/dashboard/../package.json')).toBe(404);
    expect(await rawGet(conveyor.url!, '/dashboard/..%2f..%2fpackage.json')).toBe(404);
    expect(await rawGet(conveyor.url!, '/dashboard/%2e%2e/%2e%2e/package.json')).toBe(404);
    expect(await rawGet(conveyor.url!, '/dashboard/missing.js')).toBe(404);

    // Everything else still reaches GraphQL.
    expect(await executeOk(conveyor.graphqlUrl, HealthDocument, {})).toMatchObject({ health: { ok: true } });
  });

  it('follows jobs live: stats, running, failures with their error, detail with history, retry and cancel', async () => {
    await expect.poll(() => stat('ready').textContent()).toBe('0');

    const first = (await conveyor.queue.submitJob({ type: 'echo', userId: 'dash', payload: { message: 'one' } })).job;
    const second = (await conveyor.queue.submitJob({ type: 'echo', userId: 'dash', payload: { message: 'two' } })).job;
    await expect.poll(() => stat('ready').textContent()).toBe('2');

    const claimed = await conveyor.queue.claimJobs({ workerId: 'w', limit: 2 });
    const claimedFirst = claimed.find((job) => job.id === first.id)!;
    await itemIn('running', first.id).waitFor();
    await itemIn('running', second.id).waitFor();
    await expect.poll(() => stat('running').textContent()).toBe('2');
    await expect.poll(() => stat('ready').textContent()).toBe('0');

    const failed = await conveyor.queue.failJob(first.id, claimedFirst.leaseToken!, 'kaboom', false);
    await expect.poll(() => itemIn('failures', first.id).textContent()).toContain('kaboom');
    await expect.poll(() => itemIn('running', first.id).count()).toBe(0);
    await expect.poll(() => stat('failed').textContent()).toBe('1');

    await itemIn('failures', first.id).click();
    const detail = page.locator('#detail');
    await expect.poll(() => detail.locator('[data-field="lastError"]').textContent()).toBe('kaboom');
    await expect.poll(() => detail.locator('[data-field="payload"]').textContent()).toContain('"message": "one"');
    await expect
      .poll(() => detail.locator('table.history tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-version'))))
      .toEqual([first.version, claimedFirst.version, failed.version].map(String));
    await expect.poll(() => detail.locator('table.history tbody [data-status]').allTextContents()).toEqual(['QUEUED', 'RUNNING', 'FAILED']);

    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await detail.locator('.detail-head button[data-action="retry"]').click();
    await expect.poll(() => statusOf(first.id)).toBe('QUEUED');
    await expect.poll(() => itemIn('failures', first.id).count()).toBe(0);
    await expect.poll(() => detail.locator('.detail-head').count()).toBe(1);
    await expect.poll(() => detail.locator('.fields [data-status]').textContent()).toBe('QUEUED');

    // The open job's own stream carries its result, so it appears without a reload.
    const [rerun] = await conveyor.queue.claimJobs({ workerId: 'w', limit: 1 });
    expect(rerun?.id).toBe(first.id);
    await conveyor.queue.completeJob(first.id, rerun!.leaseToken!, { echoed: 'one' });
    await expect.poll(() => detail.locator('[data-field="result"]').textContent()).toContain('"echoed": "one"');
    await expect.poll(() => detail.locator('.fields [data-status]').textContent()).toBe('COMPLETED');

    await itemIn('running', second.id).locator('button[data-action="cancel"]').click();
    await expect.poll(() => statusOf(second.id)).toBe('CANCELLED');
    await expect.poll(() => itemIn('running', second.id).count()).toBe(0);
    await expect.poll(() => stat('cancelled').textContent()).toBe('1');
  });

  it('shows jobs already running or failed when it opens, and reads them again after a reconnect', async () => {
    // Two jobs that reach RUNNING and FAILED before the page exists: no event about them reaches it.
    const running = await jobInState(conveyor.queue, 'RUNNING', { userId: 'before-a', payload: { message: 'a' }, workerId: 'w' });
    const failing = await jobInState(conveyor.queue, 'FAILED', {
      userId: 'before-b',
      payload: { message: 'b' },
      workerId: 'w',
      error: 'failed before the page',
    });

    // Every graphql-ws connection goes through here, so that the test can drop it and hold the next.
    const sockets: WebSocketRoute[] = [];
    let holdSockets = false;
    const fresh = await openDashboard((opened) =>
      opened.routeWebSocket(/\/graphql$/, (socket) => {
        sockets.push(socket);
        if (!holdSockets) socket.connectToServer();
      }),
    );
    const freshItem = (panel: string, jobId: string) => fresh.locator(`#${panel} [data-job-id="${jobId}"]`);
    try {
      await freshItem('running', running.id).waitFor();
      await expect.poll(() => freshItem('failures', failing.id).textContent()).toContain('failed before the page');
      await expect.poll(() => fresh.locator('.scope-note').textContent()).not.toContain('changed since this page opened');

      // The connection drops and the next one is held: both jobs change while no event can arrive.
      holdSockets = true;
      const dropped = sockets.length;
      await sockets[dropped - 1]!.close({ code: 1012, reason: 'test: dropped' });
      // graphql-ws waits 1 to 1.5 s before it tries again.
      await expect.poll(() => sockets.length, { timeout: 10_000 }).toBeGreaterThan(dropped);
      await expect.poll(() => fresh.locator('#connection').getAttribute('data-state')).not.toBe('connected');
      await conveyor.queue.failJob(running.id, running.leaseToken!, 'failed while away', false);
      await conveyor.queue.retryJob(failing.id);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await freshItem('running', running.id).count()).toBe(1);
      expect(await freshItem('failures', failing.id).count()).toBe(1);

      // Once connected again, the page reads both panels again: one job moved, the other left.
      holdSockets = false;
      await sockets[sockets.length - 1]!.close({ code: 1012, reason: 'test: released' });
      await fresh.locator('#connection[data-state="connected"]').waitFor();
      await expect.poll(() => freshItem('failures', running.id).textContent()).toContain('failed while away');
      await expect.poll(() => freshItem('running', running.id).count()).toBe(0);
      await expect.poll(() => freshItem('failures', failing.id).count()).toBe(0);
    } finally {
      await fresh.close();
    }
  });

  it("loads a user's jobs that changed before the page opened, and shows GraphQL errors", async () => {
    const { submitJob } = await executeOk(conveyor.graphqlUrl, SubmitJobDocument, {
      input: { type: 'echo', userId: 'early', payload: { message: 'before the page' } },
    });
    const fresh = await openDashboard();
    try {
      await fresh.locator('#user-id').fill('early');
      await fresh.locator('#user-form button[type="submit"]').click();
      await fresh.locator(`#user-jobs [data-job-id="${submitJob.job.id}"]`).waitFor();

      await fresh.locator('#user-id').fill('x'.repeat(200));
      await fresh.locator('#user-form button[type="submit"]').click();
      await fresh.locator('#errors').waitFor();
      await expect.poll(() => fresh.locator('#errors').textContent()).toContain('userId must be 1 to 128 characters long.');
    } finally {
      await fresh.close();
    }
  });

  it('sends the saved API key as a bearer token over HTTP and graphql-ws', async () => {
    const keyed = await openDashboard();
    try {
      const socketFrames: string[] = [];
      keyed.on('websocket', (socket) => socket.on('framesent', (frame) => socketFrames.push(String(frame.payload))));
      await keyed.locator('#api-key').fill('secret-key');
      // The user-jobs query itself: the page also reads its panels on its own (after a reconnect, say).
      const graphqlRequest = keyed.waitForRequest(
        (request) =>
          request.url().endsWith('/graphql') && request.method() === 'POST' && (request.postData() ?? '').includes('DashboardUserJobs'),
      );
      await keyed.locator('#api-key-form button[type="submit"]').click();
      await keyed.locator('#user-id').fill('dash');
      await keyed.locator('#user-form button[type="submit"]').click();

      expect((await graphqlRequest).headers()['authorization']).toBe('Bearer secret-key');
      expect(await keyed.evaluate(() => localStorage.getItem('conveyor.apiKey'))).toBe('secret-key');
      await expect
        .poll(() => socketFrames.map((payload) => JSON.parse(payload)).find((message) => message.type === 'connection_init'))
        .toMatchObject({ payload: { authorization: 'Bearer secret-key' } });
    } finally {
      await keyed.evaluate(() => localStorage.removeItem('conveyor.apiKey'));
      await keyed.close();
    }
  });

  it('searches by tag, user and id, and retries or cancels every match after a confirmation', async () => {
    const failed = [
      await jobInState(conveyor.queue, 'FAILED', { userId: 'bulk-b', tags: ['batch:1'], workerId: 'w' }),
      await jobInState(conveyor.queue, 'FAILED', { userId: 'bulk-a', tags: ['batch:1'], workerId: 'w' }),
    ];
    const queued = await conveyor.queue.submitJobs(
      Array.from({ length: 3 }, () => ({ type: 'echo', userId: 'bulk-a', tags: ['batch:1'] })),
    );
    const bystander = (
      await conveyor.queue.submitJob({
        type: 'echo',
        userId: 'bulk-a',
        tags: ['batch:2'],
        metadata: { shelf: 7 },
        unique: { key: 'shelf-7', forMs: 60_000, mode: 'UNIQUE_FOR' },
      })
    ).job;
    const matching = [...failed.map((job) => job.id), ...queued.map(({ job }) => job.id)];
    const search = page.locator('#search');
    const found = () =>
      search.locator('.job-list [data-job-id]').evaluateAll((items) => items.map((item) => item.getAttribute('data-job-id')));

    await search.locator('#search-tags').fill('batch:1');
    await search.locator('#search-form button[type="submit"]').click();
    await expect.poll(found).toEqual([...matching].reverse());
    await expect.poll(() => search.locator('.job-list [data-job-id]').first().locator('.tag').allTextContents()).toEqual(['batch:1']);

    await search.locator('#search-user').fill('bulk-a');
    await search.locator('#search-form button[type="submit"]').click();
    await expect.poll(found).toEqual([...queued.map(({ job }) => job.id).reverse(), failed[1]!.id]);

    // An id finds that one job and opens it.
    await search.locator('#search-id').fill(bystander.id);
    await search.locator('#search-form button[type="submit"]').click();
    await expect.poll(found).toEqual([bystander.id]);
    await expect.poll(() => page.locator('#detail .detail-head').getAttribute('data-job-id')).toBe(bystander.id);
    await expect.poll(() => page.locator('#detail [data-field="metadata"]').textContent()).toContain('"shelf": 7');
    expect(await page.locator('#detail [data-field="unique"]').textContent()).toMatch(/^shelf-7 \(UNIQUE_FOR\) until \d/);
    expect(await page.locator('#detail table.attempts').count()).toBe(0);
    // A failed job's view lists its attempts, each with how it ended.
    await search.locator('#search-id').fill(failed[0]!.id);
    await search.locator('#search-form button[type="submit"]').click();
    await expect.poll(() => page.locator('#detail .detail-head').getAttribute('data-job-id')).toBe(failed[0]!.id);
    await expect.poll(() => page.locator('#detail table.attempts [data-field="outcome"]').allTextContents()).toEqual(['FAILED']);
    await expect.poll(() => search.locator('#bulk').isHidden()).toBe(true);

    // Cancel every match of user bulk-a tagged batch:1: asked first, and "no" changes nothing.
    await search.locator('#search-id').fill('');
    await search.locator('#search-form button[type="submit"]').click();
    await expect.poll(found).toHaveLength(4);
    await search.locator('#bulk button[data-bulk="cancel"]').click();
    await expect
      .poll(() => search.locator('#bulk-question').textContent())
      .toBe('Cancel every QUEUED or RUNNING job of user bulk-a, tagged batch:1? This acts on all of them, not only those shown.');
    await search.locator('#bulk-no').click();
    await expect.poll(() => search.locator('#bulk-confirm').isHidden()).toBe(true);
    expect(await statusOf(queued[0]!.job.id)).toBe('QUEUED');
    await search.locator('#bulk button[data-bulk="cancel"]').click();
    await search.locator('#bulk-yes').click();
    await expect.poll(() => search.locator('#bulk-outcome').textContent()).toBe('Cancelled 3 jobs.');
    for (const { job } of queued) expect(await statusOf(job.id)).toBe('CANCELLED');
    await expect.poll(() => search.locator(`[data-job-id="${queued[0]!.job.id}"] [data-status]`).first().textContent()).toBe('CANCELLED');

    // Retry every match tagged batch:1, of any user: the three cancelled and the two failed.
    await search.locator('#search-user').fill('');
    await search.locator('#search-form button[type="submit"]').click();
    await search.locator('#bulk button[data-bulk="retry"]').click();
    await search.locator('#bulk-yes').click();
    await expect.poll(() => search.locator('#bulk-outcome').textContent()).toBe('Retried 5 jobs.');
    for (const id of matching) expect(await statusOf(id)).toBe('QUEUED');
    expect(await statusOf(bystander.id)).toBe('QUEUED');
  });

  it("shows the open job's log lines, and appends new ones live", async () => {
    const { job } = await conveyor.queue.submitJob({ type: 'echo', userId: 'logs', payload: { message: 'x' }, priority: 1000 });
    const [claimed] = await conveyor.queue.claimJobs({ workerId: 'w', limit: 1, types: ['echo'] });
    expect(claimed?.id).toBe(job.id);
    const lease = { id: job.id, leaseToken: claimed!.leaseToken! };
    await conveyor.queue.appendJobLogs(lease, [{ level: 'INFO', message: 'logged before the job was opened' }]);

    await itemIn('running', job.id).click();
    const messages = page.locator('#detail ol.job-logs li .log-message');
    await expect.poll(() => messages.allTextContents()).toEqual(['logged before the job was opened']);

    // The page subscribed before it read; a subscribe has no acknowledgement, so probe until one shows.
    let live = false;
    for (let i = 0; i < 30 && !live; i++) {
      await conveyor.queue.appendJobLogs(lease, [{ level: 'DEBUG', message: `probe ${i}` }]);
      live = await expect
        .poll(() => messages.allTextContents(), { timeout: 300 })
        .toContain(`probe ${i}`)
        .then(
          () => true,
          () => false,
        );
    }
    expect(live).toBe(true);

    await conveyor.queue.appendJobLogs(lease, [
      { level: 'WARN', message: 'live one', fields: { step: 1 } },
      { level: 'ERROR', message: 'live two' },
    ]);
    const lastTwo = page.locator('#detail ol.job-logs li').filter({ hasText: /live (one|two)/ });
    await expect
      .poll(() => lastTwo.evaluateAll((items) => items.map((item) => item.getAttribute('data-level'))))
      .toEqual(['WARN', 'ERROR']);
    await expect.poll(() => lastTwo.first().locator('.log-fields').textContent()).toBe('{"step":1}');
    expect((await messages.allTextContents()).at(-1)).toBe('live two');
  });

  it("draws the open job's flow as an indented tree whose statuses follow the jobs live", async () => {
    const userId = 'flow-view';
    const child = (message: string) => ({ type: 'echo', userId, payload: { message }, priority: 1000 });
    const flow = await conveyor.queue.submitFlow({
      type: 'echo',
      userId,
      payload: { message: 'root' },
      children: [child('a'), child('b')],
    });
    await page.goto(`${conveyor.url}/dashboard#job=${flow.root.id}`);
    await page.reload();
    await page.locator('#connection[data-state="connected"]').waitFor();
    const nodes = page.locator('#detail .flow-tree li');
    await expect.poll(() => nodes.evaluateAll((items) => items.map((item) => item.getAttribute('data-depth')))).toEqual(['0', '1', '1']);
    const statusIn = (id: string) => page.locator(`#detail .flow-tree li[data-job-id="${id}"] .status`);
    await expect.poll(() => statusIn(flow.root.id).textContent()).toMatch(/QUEUED · waiting for its dependencies/);

    const claimed = await conveyor.queue.claimJobs({ workerId: 'w', limit: 2, types: ['echo'] });
    expect(claimed.map((job) => job.id).sort()).toEqual([flow.jobs[1]!.id, flow.jobs[2]!.id].sort());
    for (const job of claimed) await conveyor.queue.completeJob(job.id, job.leaseToken!, null);
    await expect.poll(() => statusIn(flow.jobs[1]!.id).getAttribute('data-status')).toBe('COMPLETED');
    await expect.poll(() => statusIn(flow.root.id).textContent()).toBe('QUEUED');
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-flow.png'), fullPage: true });
  });

  it('made no requests beyond this server and raised no script errors', () => {
    expect(requestedUrls.filter((url) => !url.startsWith(`${conveyor.url}/`))).toEqual([]);
    expect(pageProblems).toEqual([]);
  });
});
