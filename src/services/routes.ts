/**
 * Inbound routes: per tenant, a path prefix maps to an internal upstream with its own timeout, and
 * optionally lists the partner keys allowed on it, by id or by scope (neither listed = every key of
 * the tenant).
 */
import { KeygateError } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Db, isoTime, toDbTime } from '../storage/db.ts';
import type { Route } from '../storage/schema.ts';
import { writeTransaction } from '../storage/write-conflicts.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { defineListing, mapPage, type Page, type PageRequest, readPage } from './paging.ts';
import { checkScopes, existingPartnerKeyIds } from './partner-keys.ts';
import { resolveTenantId } from './tenants.ts';

export const DEFAULT_ROUTE_TIMEOUT_MS = 5000;
export const MAX_ROUTE_TIMEOUT_MS = 300_000;
export const MAX_ROUTE_KEYS = 500;
/** The upstream column's width. */
const MAX_UPSTREAM_CHARS = 2048;

/** Topic on the config-change channel that tells gateway nodes a tenant's routes changed. */
export const ROUTES_CHANGE_TOPIC = 'inbound:routes';

export interface RouteView {
  id: string;
  tenantId: string;
  prefix: string;
  upstream: string;
  timeoutMs: number;
  /** null = every key of the tenant; [] = no key (the route is closed). */
  keyIds: string[] | null;
  /**
   * Keys holding one of these scopes may call the route too; null = no scope rule. The route is
   * open to every key of the tenant only when both lists are null.
   */
  scopes: string[] | null;
  createdAt: string;
  updatedAt: string;
}

export interface AddRouteInput {
  tenant: string;
  prefix: string;
  upstream: string;
  timeoutMs?: number;
  keyIds?: string[] | null;
  scopes?: string[] | null;
}

// RFC 3986 pchar plus '/': what a path may hold without being re-encoded.
const PREFIX_CHARS = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

export async function addRoute(ctx: ServiceContext, actor: Actor, input: AddRouteInput): Promise<RouteView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'route.manage', tenantId);
  const prefix = checkPrefix(input.prefix);
  const upstream = checkUpstream(input.upstream);
  const timeoutMs = input.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_ROUTE_TIMEOUT_MS) {
    throw invalid('timeoutMs', `timeout must be 1 to ${MAX_ROUTE_TIMEOUT_MS} ms`);
  }
  const keyIds = input.keyIds == null ? null : [...new Set(input.keyIds)];
  if (keyIds) {
    // Past a few hundred keys, scopes say it better (and the list must fit one IN query).
    if (keyIds.length > MAX_ROUTE_KEYS) {
      throw invalid('keyIds', `at most ${MAX_ROUTE_KEYS} keys per route; give the keys a scope instead`);
    }
    const known = await existingPartnerKeyIds(ctx.db, tenantId, keyIds);
    const unknown = keyIds.filter((k) => !known.has(k));
    if (unknown.length) {
      const shown =
        unknown.slice(0, 10).join(', ') + (unknown.length > 10 ? ` and ${unknown.length - 10} more` : '');
      throw invalid('keyIds', `not partner keys of this tenant: ${shown}`);
    }
  }
  const scopes = input.scopes == null ? null : checkScopes('scopes', input.scopes);
  const now = toDbTime();
  const row: Route = {
    id: newId('rte'),
    tenant_id: tenantId,
    prefix,
    upstream,
    timeout_ms: timeoutMs,
    // A scope rule without a key list stores an empty list, not null: a node still on a version
    // without scopes then refuses every key instead of admitting them all during a rolling deploy.
    key_ids: keyIds ? JSON.stringify(keyIds) : scopes ? '[]' : null,
    scopes: scopes ? JSON.stringify(scopes) : null,
    created_at: now,
    updated_at: now,
  };
  await writeTransaction(ctx.db, async (trx) => {
    const existing = await trx
      .selectFrom('routes')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('prefix', '=', prefix)
      .executeTakeFirst();
    if (existing)
      throw new KeygateError('KG_CONFLICT', `the tenant already has a route for ${prefix} (${existing.id})`);
    await trx.insertInto('routes').values(row).execute();
    const view = toRouteView(row);
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'route.create',
      targetType: 'route',
      targetId: row.id,
      after: view,
    });
  });
  await ctx.configEvents.publish(tenantId, ROUTES_CHANGE_TOPIC);
  return toRouteView(row);
}

export async function removeRoute(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; routeId: string },
): Promise<void> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'route.manage', tenantId);
  await ctx.db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('routes')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where((eb) => eb.or([eb('id', '=', input.routeId), eb('prefix', '=', input.routeId)]))
      .executeTakeFirst();
    if (!row) throw new KeygateError('KG_NOT_FOUND', `route ${input.routeId} not found`);
    await trx.deleteFrom('routes').where('id', '=', row.id).execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'route.delete',
      targetType: 'route',
      targetId: row.id,
      before: toRouteView(row),
    });
  });
  await ctx.configEvents.publish(tenantId, ROUTES_CHANGE_TOPIC);
}

const ROUTES = defineListing('routes', 1, (r: Route) => [r.prefix]);

/** A tenant's routes by prefix, a page at a time (all without `page.limit`). */
export async function listRoutes(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  page: PageRequest = {},
): Promise<Page<RouteView>> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'route.manage', tenantId);
  const query = ctx.db.selectFrom('routes').selectAll().where('tenant_id', '=', tenantId);
  return mapPage(await readPage(ROUTES, query, 'prefix', page), toRouteView);
}

/** Inbound hot path (behind the gateway's cache): every route of a tenant. */
export async function loadTenantRoutes(db: Db, tenantId: string): Promise<Route[]> {
  return db.selectFrom('routes').selectAll().where('tenant_id', '=', tenantId).orderBy('prefix').execute();
}

export function toRouteView(row: Route): RouteView {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    prefix: row.prefix,
    upstream: row.upstream,
    timeoutMs: Number(row.timeout_ms),
    keyIds: row.key_ids == null ? null : (JSON.parse(row.key_ids) as string[]),
    // == null: also a row read before the scopes migration ran (no such column yet).
    scopes: row.scopes == null ? null : (JSON.parse(row.scopes) as string[]),
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

/**
 * A prefix is a path: it starts with `/`, has no query, no dot segments and no empty segments,
 * and has no trailing `/` (so `/orders` covers `/orders` and `/orders/...` but not `/ordersx`).
 */
function checkPrefix(prefix: string): string {
  if (prefix.length > 255 || !PREFIX_CHARS.test(prefix)) {
    throw invalid('prefix', 'prefix must start with / and hold only path characters (no query)');
  }
  if (prefix === '/') return prefix;
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const segments = trimmed.slice(1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw invalid('prefix', 'prefix must not contain empty, "." or ".." segments');
  }
  return trimmed;
}

function checkUpstream(upstream: string): string {
  if (upstream.length > MAX_UPSTREAM_CHARS) {
    throw invalid('upstream', `upstream must be at most ${MAX_UPSTREAM_CHARS} characters`);
  }
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw invalid('upstream', 'upstream must be an absolute http(s) URL');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw invalid('upstream', 'upstream must be an absolute http(s) URL');
  }
  if (url.search || url.hash || url.username || url.password) {
    throw invalid('upstream', 'upstream must not carry a query, fragment or credentials');
  }
  // The request path is appended unchanged, so the base must not end in '/'.
  return `${url.origin}${url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')}`;
}

function invalid(path: string, message: string): KeygateError {
  return new KeygateError('KG_VALIDATION_FAILED', message, { errors: [{ path, message }] });
}
