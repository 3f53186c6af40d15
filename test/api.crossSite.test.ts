import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { startTestConveyor, type TestConveyor } from '../testing/conveyor.js';

const SET_LIMIT = 'mutation { setUserConcurrency(userId: "victim", limit: 0) { limit } }';

/** Whether a WebSocket upgrade with these headers is accepted (open) or refused (the HTTP status). */
function upgrade(wsUrl: string, headers: Record<string, string>): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl, 'graphql-transport-ws', { headers });
    socket.once('open', () => {
      socket.close();
      resolve('open');
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? -1);
      socket.terminate();
    });
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

const corsHeaders = (response: Response) => [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));

describe('cross-site requests against a server without authentication (npm start)', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(() => conveyor?.close());

  const limitOfVictim = async () => (await conveyor.queue.getUserConcurrency('victim')).limit;

  it.each([
    ['a form-urlencoded POST', 'application/x-www-form-urlencoded', `query=${encodeURIComponent(SET_LIMIT)}`],
    ['a text/plain POST', 'text/plain', JSON.stringify({ query: SET_LIMIT })],
    ['an application/graphql POST', 'application/graphql', SET_LIMIT],
    ['a POST without a content type', null, JSON.stringify({ query: SET_LIMIT })],
  ])('refuses %s with 415 and a GraphQL error body, without running it', async (_name, contentType, body) => {
    const before = await limitOfVictim();
    const blob = new Blob([body], contentType ? { type: contentType } : {});
    const response = await fetch(conveyor.graphqlUrl, {
      method: 'POST',
      body: contentType ? body : blob,
      headers: contentType ? { 'content-type': contentType } : {},
    });
    expect(response.status).toBe(415);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const json = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(json.errors[0]!.extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(json.errors[0]!.message).toMatch(/application\/json/);
    expect(await limitOfVictim()).toBe(before);
  });

  it('refuses a multipart POST (what an HTML form can send) with 415', async () => {
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: SET_LIMIT }));
    form.set('map', '{}');
    const response = await fetch(conveyor.graphqlUrl, { method: 'POST', body: form });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expect(await limitOfVictim()).not.toBe(0);
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'application/JSON;charset=UTF-8', 'application/graphql-response+json'])(
    'accepts a JSON body sent as %s',
    async (contentType) => {
      const response = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ data: { health: { ok: true } } });
    },
  );

  it('answers queries over GET, refuses mutations over GET', async () => {
    const get = (query: string) =>
      fetch(`${conveyor.graphqlUrl}?query=${encodeURIComponent(query)}`, { headers: { accept: 'application/json' } });
    const query = await get('{ health { ok } }');
    expect(await query.json()).toEqual({ data: { health: { ok: true } } });
    const mutation = await get(SET_LIMIT);
    expect(mutation.status).toBe(405);
    expect(((await mutation.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('BAD_REQUEST');
    expect(await limitOfVictim()).not.toBe(0);
  });

  it('answers an Accept it cannot serve with 406 and a GraphQL error body', async () => {
    for (const accept of ['application/xml', 'application/json']) {
      // application/json cannot carry a subscription's stream either.
      const query = accept === 'application/xml' ? '{ health { ok } }' : 'subscription { jobUpdated { id } }';
      const response = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept },
        body: JSON.stringify({ query }),
      });
      expect(response.status, accept).toBe(406);
      const json = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(json.errors[0]!.extensions.code).toBe('NOT_ACCEPTABLE');
      expect(json.errors[0]!.message).toMatch(/Accept/);
    }
  });

  it('sends no CORS headers when CORS_ORIGINS is empty, whatever the Origin', async () => {
    const origin = 'http://evil.example';
    const post = await fetch(conveyor.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ query: '{ health { ok } }' }),
    });
    expect(corsHeaders(post)).toEqual([]);
    const preflight = await fetch(conveyor.graphqlUrl, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(corsHeaders(preflight)).toEqual([]);
  });

  it("refuses a WebSocket upgrade from another site's page; allows its own origin and clients that send none", async () => {
    const { host } = new URL(conveyor.graphqlUrl);
    expect(await upgrade(conveyor.wsUrl, { origin: 'http://evil.example' })).toBe(403);
    expect(await upgrade(conveyor.wsUrl, { origin: `http://${host}` })).toBe('open');
    expect(await upgrade(conveyor.wsUrl, {})).toBe('open');
  });

  it('refuses (421) a request sent to a name that is not its own: a DNS-rebinding page is same-origin, Host gives it away', async () => {
    const { port } = new URL(conveyor.graphqlUrl);
    const evil = `evil.example:${port}`;
    // What a page on evil.example sends once its name resolves to 127.0.0.1: Host and Origin agree.
    const createKey = JSON.stringify({ query: 'mutation { createApiKey(input: { name: "rebound", role: ADMIN }) { key } }' });
    const rebound = await post(Number(port), { host: evil, origin: `http://${evil}` }, createKey);
    expect(rebound.status).toBe(421);
    expect(await upgrade(conveyor.wsUrl, { host: evil, origin: `http://${evil}` })).toBe(403);
    expect(await post(Number(port), { host: evil }, JSON.stringify({ query: SET_LIMIT }))).toMatchObject({ status: 421 });
    expect(await limitOfVictim()).not.toBe(0);
    // Its own names still answer, with any port.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `app.localhost:${port}`]) {
      expect((await post(Number(port), { host }, JSON.stringify({ query: '{ health { ok } }' }))).status).toBe(200);
    }
    expect(await upgrade(conveyor.wsUrl, { host: `localhost:${port}`, origin: `http://localhost:${port}` })).toBe('open');
  });
});

/** A POST to the local server with these headers (fetch cannot set Host). */
function post(port: number, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () => resolve({ status: response.statusCode ?? -1, body: text }));
      },
    );
    request.once('error', reject);
    request.end(body);
  });
}

describe('CORS_ORIGINS', () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      env: { WORKER_ENABLED: 'false', CORS_ORIGINS: 'http://app.example, https://admin.example:8443' },
    });
  });
  afterAll(() => conveyor?.close());

  it('allows the listed origins, with credentials, and no other', async () => {
    for (const origin of ['http://app.example', 'https://admin.example:8443']) {
      const response = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });
      expect(response.headers.get('access-control-allow-origin')).toBe(origin);
      expect(response.headers.get('access-control-allow-credentials')).toBe('true');
      expect(response.headers.get('vary')).toMatch(/Origin/);
      const preflight = await fetch(conveyor.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
      expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
    }
    for (const origin of ['http://evil.example', 'http://app.example:8080', 'https://app.example']) {
      const response = await fetch(conveyor.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin },
        body: JSON.stringify({ query: '{ health { ok } }' }),
      });
      expect(corsHeaders(response), origin).toEqual([]);
    }
  });

  it('allows WebSocket upgrades from the listed origins only', async () => {
    expect(await upgrade(conveyor.wsUrl, { origin: 'http://app.example' })).toBe('open');
    expect(await upgrade(conveyor.wsUrl, { origin: 'http://evil.example' })).toBe(403);
  });

  it('refuses an entry that is not an origin', () => {
    expect(() => loadConfig({ CORS_ORIGINS: 'http://app.example/path' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
  });
});

describe('the address a server binds', () => {
  it('is loopback without authentication unless HOST says otherwise; every address with authentication', () => {
    expect(loadConfig({ AUTH_DISABLED: 'true' }).host).toBe('127.0.0.1');
    expect(loadConfig({ AUTH_DISABLED: 'true', HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({}).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '10.1.2.3' }).host).toBe('10.1.2.3');
  });

  it('an npm start server (no HOST, no authentication) listens on 127.0.0.1', async () => {
    const conveyor = await startTestConveyor({ env: { HOST: '', WORKER_ENABLED: 'false' } });
    try {
      expect(conveyor.app!.server.address()).toMatchObject({ address: '127.0.0.1' });
    } finally {
      await conveyor.close();
    }
  });
});
