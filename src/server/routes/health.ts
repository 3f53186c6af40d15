import { pendingMigrations } from '../../db/migrator.js';
import type { Scheduler } from '../../scheduler/scheduler.js';
import type { HttpRoute } from './route.js';

/**
 * GET /health/live: the process is up (for restarts). GET /health/ready: PostgreSQL answers and every
 * migration is applied (for load balancers); 503 with the reason otherwise.
 */
export function healthRoute(deps: { scheduler: Scheduler; databaseUrl: string }): HttpRoute {
  return {
    async handle(request, response) {
      const path = request.url?.split('?')[0];
      if (request.method !== 'GET' || (path !== '/health/live' && path !== '/health/ready')) return false;
      let status = 200;
      let body: Record<string, unknown> = { status: 'ok' };
      if (path === '/health/ready') {
        const database = await deps.scheduler.ping();
        const pending = database ? await pendingMigrations(deps.databaseUrl).catch(() => null) : null;
        const ready = database && pending !== null && pending.length === 0;
        status = ready ? 200 : 503;
        body = { status: ready ? 'ok' : 'unavailable', database, pendingMigrations: pending };
      }
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
      return true;
    },
  };
}
