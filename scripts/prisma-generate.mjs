// `prisma generate` only needs the query-engine-free `prisma-client` generator, but the CLI still
// insists on a schema-engine binary being present. None can be downloaded on an offline machine, so
// point it at any existing file: generate never executes it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const placeholder = fileURLToPath(import.meta.url);
const result = spawnSync('npx', ['--no-install', 'prisma', 'generate'], {
  stdio: 'inherit',
  env: { PRISMA_SCHEMA_ENGINE_BINARY: placeholder, PRISMA_HIDE_UPDATE_MESSAGE: '1', ...process.env },
});
process.exit(result.status ?? 1);
