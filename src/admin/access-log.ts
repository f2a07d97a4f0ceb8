/**
 * Every admin-listener request: counted and timed (labelled by route template, so cardinality is
 * bounded) and written as one access-log line, with the admin token's id but never the token.
 */
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { ERROR_HEADER } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { AdminEnv } from './env.ts';

export function adminAccessLog(
  metrics: Metrics,
  logger: Logger,
  { enabled = true } = {},
): MiddlewareHandler<AdminEnv> {
  return async function logAdminRequest(c, next) {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    // Middleware is registered for ALL methods; the last route with a real method is the handler.
    const route = matchedRoutes(c).findLast((r) => r.method !== 'ALL')?.path ?? 'unmatched';
    const status = c.res.status;
    metrics.recordRequest('admin', route, status, seconds);
    const level = status >= 500 ? 'warn' : 'info';
    if ((level === 'info' && !enabled) || !logger.isLevelEnabled(level)) return;
    const actor = c.get('actor');
    logger[level](
      {
        requestId: c.get('requestId'),
        method: c.req.method,
        route,
        status,
        code: c.res.headers.get(ERROR_HEADER) ?? undefined,
        tokenId: actor?.tokenId,
        role: actor?.role,
        ms: Math.round(seconds * 1e4) / 10,
      },
      'admin request',
    );
  };
}
