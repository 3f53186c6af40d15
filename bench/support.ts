import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDatabaseIfMissing, startEmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrator.js';

export interface BenchDatabase {
  /** A fresh, migrated database per scenario. */
  create(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The benchmark's own PostgreSQL: DATABASE_URL's server if set, else an embedded one in a temp folder. */
export async function startBenchDatabase(): Promise<BenchDatabase> {
  let adminUrl: string;
  let stop = async () => {};
  if (process.env.DATABASE_URL) {
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = '/postgres';
    adminUrl = url.toString();
  } else {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'conveyor-bench-'));
    const embedded = await startEmbeddedPostgres({ dataDir, port: 54400 + Math.floor(Math.random() * 500), persistent: false });
    adminUrl = embedded.adminUrl;
    stop = async () => {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }
  return {
    async create(name) {
      const database = `conveyor_bench_${name}_${Date.now()}`;
      await createDatabaseIfMissing(adminUrl, database);
      const url = new URL(adminUrl);
      url.pathname = `/${database}`;
      await migrate(url.toString());
      return url.toString();
    },
    stop,
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export interface Figure {
  scenario: string;
  metric: string;
  value: number;
  unit: string;
  runs?: number;
}

/** Prints one JSON line per figure (for machines) and keeps it for the closing table (for people). */
export class Report {
  readonly figures: Figure[] = [];

  add(figure: Figure) {
    this.figures.push(figure);
    console.log(JSON.stringify({ bench: figure }));
  }

  printTable() {
    const rows = this.figures.map((f) => [f.scenario, f.metric, formatValue(f.value), f.unit, String(f.runs ?? '')]);
    const header = ['scenario', 'metric', 'median', 'unit', 'runs'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
    console.log(`\n${line(header)}\n${widths.map((w) => '─'.repeat(w)).join('  ')}`);
    for (const row of rows) console.log(line(row));
  }
}

function formatValue(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}
