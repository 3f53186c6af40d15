import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { createTestDatabase, withClient } from '../testing/database.js';
import { freePort } from '../testing/ports.js';
import { startTestConveyor } from '../testing/conveyor.js';
import { spawnConveyor, waitForServer } from '../testing/processes.js';

describe('authentication settings', () => {
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    await Promise.all(drops.map((drop) => drop()));
  });

  it('cannot be turned off in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true' })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true' })).toThrow(/cannot be turned off in production/);
    expect(loadConfig({ NODE_ENV: 'production' }).auth.disabled).toBe(false);
  });

  it('in production, introspection and GraphiQL are off unless enabled', async () => {
    const adminKey = `cvk_${randomBytes(32).toString('base64url')}`;
    const conveyor = await startTestConveyor({
      env: { NODE_ENV: 'production', AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: adminKey, WORKER_ENABLED: 'false' },
    });
    try {
      const introspect = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
        body: JSON.stringify({ query: '{ __schema { types { name } } }' }),
      });
      const body = (await introspect.json()) as { errors?: { message: string }[] };
      expect(body.errors?.[0]?.message).toMatch(/introspection/i);
      const page = await fetch(conveyor.graphqlUrl, { headers: { accept: 'text/html' } });
      expect(await page.text()).not.toContain('<html');
    } finally {
      await conveyor.close();
    }
  });

  it('refuses a CONVEYOR_ADMIN_KEY without the cvk_ prefix at start-up: no request could ever present it', async () => {
    const started = startTestConveyor({ env: { AUTH_DISABLED: 'false', CONVEYOR_ADMIN_KEY: 'x'.repeat(40), WORKER_ENABLED: 'false' } });
    await expect(started).rejects.toThrow(/CONVEYOR_ADMIN_KEY must start with "cvk_"/);
  });

  it('on the first start, four servers at once create one admin key and one of them prints it; it works', async () => {
    const database = await createTestDatabase();
    drops.push(database.drop);
    const servers = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const port = await freePort();
        return {
          port,
          process: spawnConveyor({ DATABASE_URL: database.url, PORT: String(port), AUTH_DISABLED: 'false', WORKER_ENABLED: 'false' }),
        };
      }),
    );
    try {
      await Promise.all(servers.map((s) => waitForServer(`http://127.0.0.1:${s.port}/graphql`, s.process)));
      const printed = servers.flatMap((s) => s.process.output().match(/cvk_[\w-]{43}/g) ?? []);
      expect(printed).toHaveLength(1);
      const count = await withClient(database.url, async (c) => (await c.query('SELECT count(*)::int AS n FROM api_keys')).rows[0].n);
      expect(count).toBe(1);
      const call = (key: string | null) =>
        fetch(`http://127.0.0.1:${servers[0]!.port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
          body: JSON.stringify({ query: '{ apiKeys { role name } }' }),
        }).then((r) => r.json() as Promise<{ data?: { apiKeys: unknown[] }; errors?: { extensions?: { code?: string } }[] }>);
      expect((await call(printed[0]!)).data?.apiKeys).toEqual([{ role: 'ADMIN', name: 'bootstrap admin' }]);
      expect((await call(null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      for (const s of servers) s.process.child.kill('SIGTERM');
      await Promise.all(servers.map((s) => s.process.exited));
    }
  });
});
