import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Modules point one way: the job model and job types at the bottom, the composition root and the
 * command at the top. Each top-level module of src/ may import only from those before it here (and
 * from itself). A new top-level module must be placed in this list, which makes its place a decision.
 */
const LAYERS = [
  'generated',
  'errors',
  'config',
  'logger',
  'shutdownSignals',
  'tracing',
  'db',
  'jobs',
  'jobTypes',
  'queue',
  'schedules',
  'events',
  'metrics',
  'auth',
  'worker',
  'maintenance',
  'graphql',
  'server',
  'conveyor',
  'library',
  'configFile',
  'client',
  'index',
  'main',
  'cli',
];

const SRC = resolve(import.meta.dirname, '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(path);
    return /\.tsx?$/.test(entry.name) ? [path] : [];
  });
}

const layerOf = (path: string) =>
  relative(SRC, path)
    .split('/')[0]!
    .replace(/\.(ts|js)$/, '');

/** Every relative import, re-export and dynamic import of a file, resolved to the src path it names. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((match) => match[1]!);
  return specifiers.map((specifier) => resolve(dirname(file), specifier));
}

describe('module layering', () => {
  const files = sourceFiles(SRC);

  it('places every top-level module of src/ in the list', () => {
    const unplaced = [...new Set(files.map(layerOf))].filter((layer) => !LAYERS.includes(layer));
    expect(unplaced).toEqual([]);
  });

  it('has every import point down the list (or stay inside its own module)', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const target of importsOf(file)) {
        if (!target.startsWith(SRC)) continue;
        const to = layerOf(target);
        if (to !== from && LAYERS.indexOf(to) > LAYERS.indexOf(from)) upward.push(`${relative(SRC, file)} → ${to}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
