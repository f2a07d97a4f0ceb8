/**
 * The inbound route table: per tenant, longest path prefix wins; a route may restrict which
 * partner keys call it, by id or by scope. Cached per tenant like partner keys (short TTL, last-known-good).
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
  /** Keys listed by id; null = no list. */
  allowedKeys: ReadonlySet<string> | null;
  /** Keys holding one of these scopes; null = no scope rule. Both null = every key of the tenant. */
  allowedScopes: ReadonlySet<string> | null;
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
      allowedScopes: r.scopes === null ? null : new Set(r.scopes),
    }))
    .sort((a, b) => b.prefix.length - a.prefix.length);
}

/**
 * The route for `path` that `key` may call: the longest prefix that matches on a segment
 * boundary (`/orders` matches `/orders` and `/orders/7`, not `/ordersx`). Throws
 * KG_ROUTE_NOT_FOUND when no prefix matches, KG_ROUTE_FORBIDDEN when the route lists keys or
 * scopes and the key is neither listed nor holds one of the scopes.
 */
export function selectRoute(
  table: RouteTable | undefined,
  path: string,
  key: { keyId: string; scopes: ReadonlySet<string> },
): InboundRoute {
  const route = table?.find(
    (r) =>
      r.prefix === '/' || path === r.prefix || (path.startsWith(r.prefix) && path[r.prefix.length] === '/'),
  );
  if (!route) throw new KeygateError('KG_ROUTE_NOT_FOUND', `no route for ${truncate(path)}`);
  if ((route.allowedKeys || route.allowedScopes) && !mayCall(route, key)) {
    throw new KeygateError('KG_ROUTE_FORBIDDEN', `this key may not call ${route.prefix}`);
  }
  return route;
}

function mayCall(route: InboundRoute, key: { keyId: string; scopes: ReadonlySet<string> }): boolean {
  if (route.allowedKeys?.has(key.keyId)) return true;
  if (route.allowedScopes) for (const scope of key.scopes) if (route.allowedScopes.has(scope)) return true;
  return false;
}

function truncate(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}
