#!/usr/bin/env node
// The `conveyor` command. In a checkout it runs the TypeScript sources through tsx (no build step);
// the installed package has no sources and runs its build (dist/).
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/cli.js', import.meta.url).href);
}
