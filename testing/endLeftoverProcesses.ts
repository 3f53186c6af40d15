import { afterAll } from 'vitest';
import { endLeftoverProcesses } from './processes.js';

// After each test file's own hooks (setup files' hooks are registered first, and after-hooks run last
// to first): whatever the file spawned and left running is ended, so a failed test cannot leave a
// server and its PostgreSQL taking ports and CPU from the files that run after it.
afterAll(async () => {
  const left = await endLeftoverProcesses();
  if (left > 0) console.warn(`ended ${left} process(es) the test file left running`);
});
