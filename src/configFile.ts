import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError, type Settings } from './config.js';
import type { AnyJobType } from './jobTypes/jobType.js';
import type { QueueDefinitions } from './queue/flowGates.js';
import type { ScheduleDefinition } from './schedules/definition.js';

/**
 * A team's `conveyor.config.ts`: its job types, its recurring schedules (`defineSchedule`), and settings
 * by the names of the environment variables they stand for (the environment wins over the file).
 *
 *   export default defineConfig({ jobTypes: [resizeImage, sendInvoice], settings: { WORKER_CONCURRENCY: 20 } });
 */
export interface ConveyorConfig {
  jobTypes?: readonly AnyJobType[];
  /** Written as the CONFIG schedules at each start; one removed from this list is deleted then. */
  schedules?: readonly ScheduleDefinition[];
  /** Queues by name with their cluster-wide cap and pause, applied at each start (what is not given is left as it is). */
  queues?: QueueDefinitions;
  /** Concurrency keys, or templates "prefix:*" (every key of the prefix on its own), with their cap, rate limit and pause. */
  keys?: QueueDefinitions;
  settings?: Settings;
}

/** Declares a config file's contents (typed; returns them as they are). */
export function defineConfig(config: ConveyorConfig): ConveyorConfig {
  return config;
}

/** Looked for in the working folder, in this order, when neither --config nor CONVEYOR_CONFIG names one. */
export const CONFIG_FILE_NAMES = ['conveyor.config.ts', 'conveyor.config.mts', 'conveyor.config.js', 'conveyor.config.mjs'];

/** A queue's or key's cap, rate limit and pause, as the file gives them. */
const gateShape = z.record(
  z.string().min(1),
  z.strictObject({
    maxRunning: z.number().int().min(0).nullable().optional(),
    paused: z.boolean().optional(),
    rateLimit: z
      .strictObject({ max: z.number().int().min(0), intervalMs: z.number().int().min(1) })
      .nullable()
      .optional(),
  }),
);

const configShape = z.object({
  jobTypes: z
    .array(
      z.looseObject({
        name: z.string().min(1),
        payload: z.custom<z.ZodType>((value) => typeof (value as z.ZodType | null)?.safeParse === 'function', 'a zod schema'),
        handler: z.function().optional(),
      }),
    )
    .optional(),
  // Only their shape here: each is checked against the job types when the process starts.
  schedules: z.array(z.looseObject({ name: z.string().min(1), job: z.looseObject({ type: z.string(), userId: z.string() }) })).optional(),
  queues: gateShape.optional(),
  keys: gateShape.optional(),
  settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});

/** The config file's path: the one named, or the first of CONFIG_FILE_NAMES in `cwd`, or null. */
export function findConfigFile(named: string | null, cwd = process.cwd()): string | null {
  if (named) return path.resolve(cwd, named);
  return CONFIG_FILE_NAMES.map((name) => path.join(cwd, name)).find((file) => existsSync(file)) ?? null;
}

/**
 * Loads a config file, TypeScript included, without a build step (tsx's loader). Each call loads it
 * afresh (so that `conveyor dev` sees an edit), and `onImport` hears of every file of the project it
 * loaded (a TypeScript config's own imports, not node_modules), for `conveyor dev` to watch.
 * ConfigError says what is wrong with it.
 */
export async function loadConfigFile(file: string, options: { onImport?: (file: string) => void } = {}): Promise<ConveyorConfig> {
  if (!existsSync(file)) throw new ConfigError(`Config file ${file} does not exist.`);
  // A fresh URL each time, so that a reload does not get the cached module (tsx's tsImport loads the
  // config's imports afresh too: each call has a namespace of its own). JavaScript is imported as it
  // is; TypeScript through tsx's loader, registered only then (a JS config costs no tsx).
  const url = `${pathToFileURL(file).href}?t=${Date.now()}`;
  const onImport = (imported: string) => {
    if (imported.startsWith('file:') && !imported.includes('/node_modules/'))
      options.onImport?.(fileURLToPath(imported.replace(/\?.*$/, '')));
  };
  let loaded: { default?: unknown };
  try {
    loaded = (
      /\.(c|m)?js$/.test(file)
        ? await import(url)
        : await (await import('tsx/esm/api')).tsImport(url, { parentURL: import.meta.url, onImport })
    ) as { default?: unknown };
  } catch (error) {
    throw new ConfigError(`Config file ${file} could not be loaded: ${(error as Error).message}`);
  }
  const config = (loaded.default as { default?: unknown } | undefined)?.default ?? loaded.default;
  const parsed = configShape.safeParse(config);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'default export'}: ${issue.message}`);
    throw new ConfigError(`Config file ${file} is not a Conveyor config (export default defineConfig({ … })):\n  ${problems.join('\n  ')}`);
  }
  return config as ConveyorConfig;
}
