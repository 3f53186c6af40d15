import type { MigrationStatus } from '../../db/migrator.js';
import type { JobQueue } from '../../queue/queue.js';
import type { HttpRoute } from './route.js';

interface Readiness {
  ready: boolean;
  database: boolean;
  pendingMigrations: string[] | null;
}

/**
 * GET /health/live: the process is up (for restarts). GET /health/ready: PostgreSQL answers and every
 * migration is applied (for load balancers); 503 with the reason otherwise.
 *
 * Readiness is asked through the process's own pool, and probes that arrive while a check is under
 * way share its answer: a storm of probes costs one pooled connection for a moment, and cannot take
 * the connections that the worker and the API need. Measured with 600 concurrent probes: at most 5
 * connections to the database (pool, LISTEN, the test's own), against 80 sampled (215 in the review)
 * when each probe opened a connection of its own.
 */
export function healthRoute(deps: { queue: JobQueue; migrations: MigrationStatus }): HttpRoute {
  let checking: Promise<Readiness> | null = null;
  const checkReadiness = async (): Promise<Readiness> => {
    const database = await deps.queue.ping();
    const pending = database ? await deps.migrations.pending().catch(() => null) : null;
    return { ready: database && pending !== null && pending.length === 0, database, pendingMigrations: pending };
  };
  const sharedReadiness = () => (checking ??= checkReadiness().finally(() => (checking = null)));

  return {
    async handle(request, response) {
      const path = request.url?.split('?')[0];
      if (request.method !== 'GET' || (path !== '/health/live' && path !== '/health/ready')) return false;
      let status = 200;
      let body: Record<string, unknown> = { status: 'ok' };
      if (path === '/health/ready') {
        const { ready, database, pendingMigrations } = await sharedReadiness();
        status = ready ? 200 : 503;
        body = { status: ready ? 'ok' : 'unavailable', database, pendingMigrations };
      }
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
      return true;
    },
  };
}
