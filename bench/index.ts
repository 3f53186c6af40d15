// `npm run bench` (add `-- --quick` for the short run): starts its own PostgreSQL (or uses
// DATABASE_URL's server), runs each scenario, prints a JSON line per figure and a table of medians.
import { benchHeadOfLine } from './headOfLine.js';
import { Report, startBenchDatabase } from './support.js';

const quick = process.argv.includes('--quick');
const db = await startBenchDatabase();
const report = new Report();
const started = Date.now();
try {
  await benchHeadOfLine(db, report, { quick });
} finally {
  await db.stop();
}
report.printTable();
console.log(`\nbench finished in ${((Date.now() - started) / 1000).toFixed(1)} s (${quick ? 'quick' : 'full'} mode)`);
