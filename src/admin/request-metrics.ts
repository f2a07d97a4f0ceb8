/** Counts and times every admin-listener request, labelled by route template (bounded cardinality). */
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Metrics } from '../metrics.ts';
import type { AdminEnv } from './env.ts';

export function adminRequestMetrics(metrics: Metrics): MiddlewareHandler<AdminEnv> {
  return async function countAdminRequest(c, next) {
    const started = performance.now();
    await next();
    // Middleware is registered for ALL methods; the last route with a real method is the handler.
    const handler = matchedRoutes(c).findLast((r) => r.method !== 'ALL');
    metrics.recordRequest(
      'admin',
      handler?.path ?? 'unmatched',
      c.res.status,
      (performance.now() - started) / 1000,
    );
  };
}
