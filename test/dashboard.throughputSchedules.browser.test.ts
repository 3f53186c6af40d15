import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

// Debian's Chromium, not a browser downloaded by Playwright: the tests run offline.
const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
};
const SCREENSHOT = fileURLToPath(new URL('../test-results/dashboard-throughput-schedules.png', import.meta.url));
const UPLOT_BUILD = createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js');

type Point = { at: string; completed: number; failed: number; cancelled: number };
const sum = (points: readonly Point[], field: 'completed' | 'failed' | 'cancelled') => points.reduce((total, p) => total + p[field], 0);

describe('the dashboard: throughput chart and schedules', () => {
  let conveyor: TestConveyor;
  let browser: Browser;
  let page: Page;
  const pageProblems: string[] = [];
  const requestedUrls: string[] = [];
  /** The points of every throughput answer the page received, latest last. */
  const throughputAnswers: Point[][] = [];

  async function openDashboard(): Promise<Page> {
    const opened = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    opened.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
    opened.on('console', (message) => {
      if (message.type() === 'error') pageProblems.push(`console: ${message.text()}`);
    });
    opened.on('request', (request) => requestedUrls.push(request.url()));
    opened.on('response', async (response) => {
      if (!(response.request().postData() ?? '').includes('DashboardThroughput')) return;
      // A response that arrives as the page reloads or closes has no body left to read (Chromium:
      // "No resource with given identifier found"); it was for a page no longer shown, so it is not
      // one of the answers the assertions look at. Unhandled, that rejection failed a CI run.
      const body = (await response.json().catch(() => null)) as { data?: { throughput?: Point[] } } | null;
      if (body?.data?.throughput) throughputAnswers.push(body.data.throughput);
    });
    await opened.goto(`${conveyor.url}/dashboard`);
    await opened.locator('#connection[data-state="connected"]').waitFor();
    return opened;
  }

  beforeAll(async () => {
    // The built-in worker runs the demo's echo jobs for real.
    conveyor = await startTestConveyor();
    browser = await chromium.launch(CHROMIUM);
    page = await openDashboard();
  });
  afterAll(async () => {
    await browser?.close();
    await conveyor?.close();
  });

  it("serves uPlot's pinned browser build and stylesheet itself", async () => {
    const script = await fetch(`${conveyor.url}/dashboard/vendor/uplot.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toBe(await readFile(UPLOT_BUILD, 'utf8'));
    const css = await fetch(`${conveyor.url}/dashboard/vendor/uplot.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await css.text()).toContain('.uplot');
    expect((await fetch(`${conveyor.url}/dashboard/vendor/uPlot.esm.js`)).status).toBe(404);
    expect(requestedUrls).toContain(`${conveyor.url}/dashboard/vendor/uplot.js`);
    expect(await page.evaluate(() => typeof (globalThis as { uPlot?: unknown }).uPlot)).toBe('function');
  });

  it('draws the jobs that finish while it is open, as the server counts them per minute', async () => {
    const total = (field: string) => page.locator(`#throughput [data-total="${field}"]`).textContent();
    await expect.poll(() => total('completed')).toBe('0');

    const submitted = [
      ...Array.from({ length: 6 }, (_, i) => ({ type: 'echo', userId: `chart-${i % 2}`, payload: { message: `ok ${i}` } })),
      ...Array.from({ length: 3 }, (_, i) => ({
        type: 'echo',
        userId: 'chart-f',
        payload: { fail: true, message: `no ${i}` },
        maxAttempts: 1,
      })),
    ];
    const jobs = await conveyor.queue.submitJobs(submitted);
    await expect
      .poll(async () => (await Promise.all(jobs.map(({ job }) => conveyor.queue.getJob(job.id)))).map((job) => job?.status).sort(), {
        timeout: 20_000,
      })
      .toEqual([...Array(6).fill('COMPLETED'), ...Array(3).fill('FAILED')]);

    // The live counts tell the page that jobs finished; it reads the points again on its own.
    await expect.poll(() => total('completed'), { timeout: 10_000 }).toBe('6');
    await expect.poll(() => total('failed')).toBe('3');
    const plotted = throughputAnswers.at(-1)!;
    expect(sum(plotted, 'completed')).toBe(6);
    expect(sum(plotted, 'failed')).toBe(3);
    expect(plotted.length).toBeGreaterThanOrEqual(180);
    const fromServer = await conveyor.queue.throughput({ since: new Date(plotted[0]!.at), bucketMinutes: 1 });
    expect(fromServer.slice(0, plotted.length).map((p) => ({ ...p, at: p.at.toISOString() }))).toEqual(plotted);

    // One type's jobs only: none of sleep, all of echo.
    await page.locator('#throughput-type').selectOption('sleep');
    await expect.poll(() => total('completed')).toBe('0');
    expect(await total('failed')).toBe('0');
    await page.locator('#throughput-type').selectOption('echo');
    await expect.poll(() => total('completed')).toBe('6');
    expect(await total('failed')).toBe('3');

    // uPlot drew them: lines of the completed and failed colours rise well above the zero line.
    const heights = await page.locator('#throughput canvas').evaluate((canvas: HTMLCanvasElement) => {
      const style = getComputedStyle(document.documentElement);
      const { data, width } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      /** How many canvas rows hold a pixel of exactly this colour (a flat line holds two or three). */
      const rowsOf = (variable: string) => {
        const hex = style.getPropertyValue(variable).trim().slice(1);
        const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
        const rows = new Set<number>();
        for (let i = 0; i < data.length; i += 4)
          if (data[i] === r && data[i + 1] === g && data[i + 2] === b) rows.add(Math.floor(i / 4 / width));
        return rows.size;
      };
      return { completed: rowsOf('--completed'), failed: rowsOf('--failed'), cancelled: rowsOf('--cancelled') };
    });
    expect(heights.completed).toBeGreaterThan(20);
    expect(heights.failed).toBeGreaterThan(20);
    expect(heights.cancelled).toBeLessThan(10);
  });

  it('lists the schedules, opens the last job, pauses and resumes, and deletes after a confirmation', async () => {
    await conveyor.schedules.upsert({ name: 'every-second', intervalMs: 1000, job: { type: 'echo', userId: 'ticks' } }, null);
    await conveyor.schedules.upsert(
      { name: 'nightly', cron: '30 2 * * *', timeZone: 'Europe/Paris', job: { type: 'echo', userId: 'reports' } },
      null,
    );
    await expect.poll(async () => (await conveyor.schedules.get('every-second'))?.lastJobId, { timeout: 10_000 }).toBeTruthy();

    const fresh = await openDashboard();
    try {
      const row = (name: string) => fresh.locator(`#schedules tr[data-schedule="${name}"]`);
      await row('every-second').waitFor();
      expect(await row('every-second').textContent()).toContain('every 1 s');
      expect(await row('nightly').locator('code').textContent()).toBe('30 2 * * *');
      expect(await row('nightly').textContent()).toContain('Europe/Paris');
      expect(await row('nightly').locator('.next-runs time').count()).toBe(3);
      expect(await row('nightly').locator('[data-field="state"]').textContent()).toBe('Active');
      await mkdir(dirname(SCREENSHOT), { recursive: true });
      await fresh.screenshot({ path: SCREENSHOT, fullPage: true });

      const lastJobId = await row('every-second').locator('button[data-open-job]').getAttribute('data-open-job');
      expect(lastJobId).toBeTruthy();
      await row('every-second').locator('button[data-open-job]').click();
      await expect.poll(() => fresh.locator('#detail .detail-head').getAttribute('data-job-id')).toBe(lastJobId);

      await row('nightly').locator('button[data-schedule-action="pause"]').click();
      await expect.poll(async () => (await conveyor.schedules.get('nightly'))?.paused).toBe(true);
      await expect.poll(() => row('nightly').locator('[data-field="state"]').textContent()).toBe('Paused');
      expect(await row('nightly').locator('.next-runs').textContent()).toBe('none while paused');
      expect((await conveyor.schedules.get('every-second'))?.paused).toBe(false);

      await row('nightly').locator('button[data-schedule-action="resume"]').click();
      await expect.poll(async () => (await conveyor.schedules.get('nightly'))?.paused).toBe(false);
      await expect.poll(() => row('nightly').locator('.next-runs time').count()).toBe(3);

      await row('every-second').locator('button[data-schedule-action="delete"]').click();
      const confirm = fresh.locator('#schedules .schedule-confirm');
      await expect
        .poll(() => confirm.locator('.schedule-question').textContent())
        .toBe('Delete schedule every-second? It makes no more jobs; the jobs it made stay.');
      await confirm.locator('.schedule-no').click();
      await expect.poll(() => confirm.isHidden()).toBe(true);
      expect(await conveyor.schedules.get('every-second')).not.toBeNull();
      await row('every-second').locator('button[data-schedule-action="delete"]').click();
      await confirm.locator('.schedule-yes').click();
      await expect.poll(() => row('every-second').count()).toBe(0);
      expect(await conveyor.schedules.get('every-second')).toBeNull();
      expect(await conveyor.queue.getJob(lastJobId!)).not.toBeNull();
    } finally {
      await fresh.close();
    }
  });

  it('lists the queues with their caps and rates; pauses, resumes and sets a cap from the page', async () => {
    await conveyor.queue.flowGates.configure('QUEUE', 'mail', { maxRunning: 2, rateLimit: { max: 100, intervalMs: 60_000 } });
    const fresh = await openDashboard();
    try {
      const row = (gate: string) => fresh.locator(`#queues tr[data-gate="${gate}"]`);
      await row('QUEUE:mail').waitFor();
      expect(await row('QUEUE:mail').textContent()).toContain('100 / 60 s');
      expect(await row('QUEUE:mail').locator('[data-field="used"]').textContent()).toBe('0 / 2');
      expect(await row('QUEUE:default').locator('[data-field="state"]').textContent()).toBe('Active');

      await row('QUEUE:mail').locator('button[data-gate-action="pause"]').click();
      await expect.poll(async () => (await conveyor.queue.flowGates.list()).find((g) => g.name === 'mail')?.paused).toBe(true);
      await expect.poll(() => row('QUEUE:mail').locator('[data-field="state"]').textContent()).toBe('Paused');
      expect(await row('QUEUE:mail').locator('[data-field="blocked-by"]').textContent()).toBe('held back: QUEUE_PAUSED');
      await row('QUEUE:mail').locator('button[data-gate-action="resume"]').click();
      await expect.poll(async () => (await conveyor.queue.flowGates.list()).find((g) => g.name === 'mail')?.paused).toBe(false);
      // The row is drawn again from the answer: fill it in only then.
      await expect.poll(() => row('QUEUE:mail').locator('[data-field="state"]').textContent()).toBe('Active');

      await row('QUEUE:mail').locator('input[name="cap"]').fill('7');
      await row('QUEUE:mail').locator('button[data-gate-action="cap"]').click();
      await expect.poll(async () => (await conveyor.queue.flowGates.list()).find((g) => g.name === 'mail')?.maxRunning).toBe(7);
      await expect.poll(() => row('QUEUE:mail').locator('[data-field="used"]').textContent()).toBe('0 / 7');

      // A paused key template: its key's job waits, and the row says for what; resumed from the page.
      await conveyor.queue.flowGates.configure('KEY', 'tenant:*', { paused: true });
      const held = (await conveyor.queue.submitJob({ type: 'echo', userId: 'dash', concurrencyKey: 'tenant:acme', payload: {} })).job;
      await fresh.reload();
      await row('KEY:tenant:*').waitFor();
      expect(await row('KEY:tenant:*').textContent()).toContain('key template');
      expect(await row('KEY:tenant:*').locator('[data-field="waiting-for"]').textContent()).toBe('waiting for: 1 KEY_PAUSED');
      await row('KEY:tenant:*').locator('button[data-gate-action="resume"]').click();
      await expect
        .poll(async () => (await conveyor.queue.getJob(held.id))?.holdsSlot || (await conveyor.queue.getJob(held.id))?.status !== 'QUEUED')
        .toBe(true);
    } finally {
      await fresh.close();
    }
  });

  it('keeps a pause drawn when a list read before it comes back after it', async () => {
    await conveyor.queue.flowGates.configure('QUEUE', 'mail', { paused: false });
    const fresh = await openDashboard();
    try {
      const state = () => fresh.locator('#queues tr[data-gate="QUEUE:mail"] [data-field="state"]').textContent();
      await expect.poll(state).toBe('Active');
      // The next list read reaches the server now (mail still active) and its answer is held back.
      let answered!: () => void;
      const listAnswered = new Promise<void>((resolve) => (answered = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      await fresh.route('**/graphql', async (route) => {
        if (!(route.request().postData() ?? '').includes('DashboardFlowGates')) return route.fallback();
        const response = await route.fetch();
        answered();
        await released;
        await route.fulfill({ response });
      });
      // Saving the API key reads every panel again.
      await fresh.locator('#api-key-form').evaluate((form: HTMLFormElement) => form.requestSubmit());
      await listAnswered;

      const configured = fresh.waitForResponse((response) => (response.request().postData() ?? '').includes('DashboardConfigureQueue'));
      await fresh.locator('#queues tr[data-gate="QUEUE:mail"] button[data-gate-action="pause"]').click();
      await configured;
      await expect.poll(state).toBe('Paused');
      const staleDelivered = fresh.waitForResponse((response) => (response.request().postData() ?? '').includes('DashboardFlowGates'));
      release();
      await staleDelivered;
      await fresh.waitForTimeout(300);
      expect(await state()).toBe('Paused');
    } finally {
      await fresh.close();
      await conveyor.queue.flowGates.configure('QUEUE', 'mail', { paused: false });
    }
  });

  it('made no requests beyond this server and raised no script errors', () => {
    expect(requestedUrls.filter((url) => !url.startsWith(`${conveyor.url}/`))).toEqual([]);
    expect(pageProblems).toEqual([]);
  });
});

describe('the dashboard with a USER key', () => {
  let conveyor: TestConveyor;
  let browser: Browser;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { AUTH_DISABLED: 'false', WORKER_ENABLED: 'false' } });
    browser = await chromium.launch(CHROMIUM);
  });
  afterAll(async () => {
    await browser?.close();
    await conveyor?.close();
  });

  it('says that Throughput and Schedules need an ADMIN key, instead of showing an error', async () => {
    const { key } = await conveyor.apiKeys.create({ name: 'alice', role: 'USER', userId: 'alice' });
    const page = await browser.newPage();
    try {
      await page.addInitScript((apiKey) => localStorage.setItem('conveyor.apiKey', apiKey), key);
      await page.goto(`${conveyor.url}/dashboard`);
      await expect.poll(() => page.locator('#throughput .panel-note').textContent()).toBe('The chart needs an ADMIN API key.');
      await expect.poll(() => page.locator('#schedules .panel-note').textContent()).toBe('Schedules need an ADMIN API key.');
      expect(await page.locator('#throughput .throughput-body').isHidden()).toBe(true);
      expect(await page.locator('#schedules table').isHidden()).toBe(true);
      // The page's other panels (recentJobs: ADMIN or WORKER) report theirs; these two report none.
      const errors = await page.locator('#error-list li').allTextContents();
      expect(errors.filter((error) => error.includes('needs a ADMIN key'))).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
