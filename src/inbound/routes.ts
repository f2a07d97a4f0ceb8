/**
 * The inbound route table: per tenant, longest path prefix wins; a route may restrict which
 * partner keys call it. Cached per tenant like partner keys (short TTL, last-known-good).
 */
import { KeygateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { loadTenantRoutes, toRouteView } from '../services/routes.ts';
import type { Db } from '../storage/db.ts';
import { createLkgCache, type LkgCache } from './lkg-cache.ts';

export interface InboundRoute {
  id: string;
  prefix: string;
  /** Origin plus optional base path, without a trailing slash. */
  upstream: string;
  timeoutMs: number;
  /** null = every key of the tenant. */
  allowedKeys: ReadonlySet<string> | null;
}

/** A tenant's routes, longest prefix first. */
export type RouteTable = readonly InboundRoute[];

export const DEFAULT_ROUTE_CACHE_TTL_MS = 5000;

export function createRouteCache(deps: {
  db: Db;
  ttlMs?: number;
  logger?: Pick<Logger, 'warn'>;
}): LkgCache<RouteTable> {
  return createLkgCache({
    load: async (tenantId) => compileRoutes(await loadTenantRoutes(deps.db, tenantId)),
    ttlMs: deps.ttlMs ?? DEFAULT_ROUTE_CACHE_TTL_MS,
    maxEntries: 10_000,
    what: 'route table',
    logger: deps.logger,
  });
}

export function compileRoutes(rows: Parameters<typeof toRouteView>[0][]): RouteTable {
  return rows
    .map(toRouteView)
    .map((r) => ({
      id: r.id,
      prefix: r.prefix,
      upstream: r.upstream,
      timeoutMs: r.timeoutMs,
      allowedKeys: r.keyIds === null ? null : new Set(r.keyIds),
    }))
    .sort((a, b) => b.prefix.length - a.prefix.length);
}

/**
 * The route for `path` that `keyId` may call: the longest prefix that matches on a segment
 * boundary (`/orders` matches `/orders` and `/orders/7`, not `/ordersx`). Throws
 * KG_ROUTE_NOT_FOUND when no prefix matches, KG_ROUTE_FORBIDDEN when the key is not listed.
 */
export function selectRoute(table: RouteTable | undefined, path: string, keyId: string): InboundRoute {
  const route = table?.find(
    (r) =>
      r.prefix === '/' || path === r.prefix || (path.startsWith(r.prefix) && path[r.prefix.length] === '/'),
  );
  if (!route) throw new KeygateError('KG_ROUTE_NOT_FOUND', `no route for ${truncate(path)}`);
  if (route.allowedKeys && !route.allowedKeys.has(keyId)) {
    throw new KeygateError('KG_ROUTE_FORBIDDEN', `this key may not call ${route.prefix}`);
  }
  return route;
}

function truncate(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
