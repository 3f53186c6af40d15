import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

describe('examples/follow-job.ts', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor();
  });
  afterAll(() => conveyor?.close());

  it('submits a job against a live server and follows it to COMPLETED with a progress bar', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/follow-job.ts', '--url', conveyor.graphqlUrl, '--ms', '2000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));

    expect(code, output).toBe(0);
    const lines = output.trim().split('\n');
    expect(lines[0]).toMatch(/^submitted job [0-9a-f-]{36}$/);
    // Progress arrives while it runs (the worker sends at most four updates a second) …
    expect(output).toMatch(/\[#+-+\]\s+[1-9]\d?%\s+RUNNING\s+step \d+ of 10/);
    expect(output).toMatch(/\[#{20}\] 100%\s+COMPLETED/);
    expect(lines.at(-1)).toBe('done');
  });
});
