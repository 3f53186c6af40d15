import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

// Debian's Chromium, as the dashboard's browser test uses it (the tests run offline).
const CHROMIUM = { executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] };

describe('the typed client in a browser', () => {
  let conveyor: TestConveyor;
  let browser: Browser;
  beforeAll(async () => {
    conveyor = await startTestConveyor();
    browser = await chromium.launch(CHROMIUM);
  });
  afterAll(async () => {
    await browser?.close();
    await conveyor?.close();
  });

  it('bundles for the browser (no Node modules) and submits and watches a job there with the global fetch and WebSocket', async () => {
    // An app's bundler does this; for platform "browser" esbuild refuses node: imports and Node's modules.
    const bundle = await build({
      entryPoints: ['src/client/client.ts'],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'ConveyorClient',
      write: false,
      logLevel: 'silent',
    });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    // A page of the server's own origin, as an app served beside the API would be.
    await page.goto(`${conveyor.url}/health/live`);
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text });

    const seen = await page.evaluate(async (url) => {
      const { createConveyorClient } = (window as unknown as { ConveyorClient: typeof import('../src/client/client.js') }).ConveyorClient;
      const client = createConveyorClient({ url });
      const { job } = await client.submit({ type: 'sleep', userId: 'in-a-browser', payload: { ms: 300, steps: 3 } });
      const updates: [number, string][] = [];
      for await (const update of client.watch({ id: job.id })) {
        updates.push([update.version, update.status]);
        if (update.status === 'COMPLETED') break;
      }
      await client.close();
      return updates;
    }, conveyor.graphqlUrl);

    expect(problems).toEqual([]);
    expect(seen.at(-1)![1]).toBe('COMPLETED');
    const versions = seen.map(([version]) => version);
    expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
  });
});
