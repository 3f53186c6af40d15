import type { ConveyorMetrics } from '../../metrics/metrics.js';
import type { HttpRoute } from './route.js';

/** GET /metrics in Prometheus' text format. */
export function metricsRoute(metrics: ConveyorMetrics): HttpRoute {
  return {
    async handle(request, response) {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') return false;
      const body = await metrics.registry.metrics();
      response.writeHead(200, { 'content-type': metrics.registry.contentType });
      response.end(body);
      return true;
    },
  };
}
