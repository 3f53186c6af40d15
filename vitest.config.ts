import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // One copy of graphql for the schema and the tests ("Cannot use GraphQLScalarType from another realm").
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['testing/globalSetup.ts'],
    setupFiles: ['testing/endLeftoverProcesses.ts'],
    // Generous, because a test that starts processes (a server, its embedded PostgreSQL) waits up to a
    // minute for each (waitForServer): alone they start in seconds, but beside another file's processes on
    // two cores a first start once took more than 30 s. A hang still fails; a loaded machine does not.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: more parallel files only make the timing-sensitive ones noisier.
    maxWorkers: 2,
    // Test files share a worker's loaded modules instead of importing the whole server again each
    // (nothing in src/ or testing/ keeps state at module level; every test starts its own queue or
    // server): the suite took 526 s instead of 602 s here, 164 s of module imports down to 16 s.
    isolate: false,
    reporters: ['default'],
  },
});
