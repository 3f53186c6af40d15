// `npm run bench` (add `-- --quick` for the short run, under two minutes): starts its own PostgreSQL
// (or uses DATABASE_URL's server), runs each scenario, prints a JSON line per figure and a table of
// medians. Scenarios run one after another on the same machine, so their figures compare.
import { spawnSync } from 'node:child_process';
import { benchFlowControl } from './flowControl.js';
import { benchFlows } from './flows.js';
import { benchHeadOfLine } from './headOfLine.js';
import { benchLogs } from './logs.js';
import { benchOutsideWorkers } from './outside.js';
import { benchCeiling, benchLatency, benchProcess, benchSubmit, benchSubscriptions } from './scenarios.js';
import { benchScale } from './scale.js';
import { benchSchedules } from './schedules.js';
import { Report, startBenchDatabase } from './support.js';

const quick = process.argv.includes('--quick');
const only = process.argv
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const options = { quick, runs: quick ? 1 : 3 };
const scenarios = {
  submit: benchSubmit,
  process: benchProcess,
  headOfLine: benchHeadOfLine,
  flowControl: benchFlowControl,
  flow: benchFlows,
  outside: benchOutsideWorkers,
  latency: benchLatency,
  subscriptions: benchSubscriptions,
  schedules: benchSchedules,
  logs: benchLogs,
  ceiling: benchCeiling,
  scale: benchScale,
};

// Server and worker processes run the production build.
const build = spawnSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');

const db = await startBenchDatabase();
const report = new Report();
const started = Date.now();
try {
  for (const [name, run] of Object.entries(scenarios)) {
    if (only && !only.includes(name)) continue;
    console.error(`bench: ${name} …`);
    await run(db, report, options);
  }
} catch (error) {
  console.error('bench failed:', error);
  process.exitCode = 1;
} finally {
  await db.stop();
}
report.printTable();
console.log(`\nbench finished in ${((Date.now() - started) / 1000).toFixed(1)} s (${quick ? 'quick' : 'full'} mode)`);
