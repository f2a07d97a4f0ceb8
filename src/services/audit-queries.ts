/**
 * Reading the two audit trails: `admin_audit` (who changed what) and the inbound `audit_log`
 * (one row per partner call). Paginated newest first with an opaque cursor; a tenant role only
 * ever sees its own tenant's rows.
 */
import { KeygateError } from '../errors.ts';
import { isoTime, toDbTime } from '../storage/db.ts';
import type { AuditLogRow, AuditOutcome } from '../storage/schema.ts';
import { type Actor, authorize } from './actor.ts';
import { listAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { defineListing, mapPage, type Page, pageOf, rowsToFetch, startAfter } from './paging.ts';
import { resolveTenantId } from './tenants.ts';

const ADMIN_AUDIT = defineListing('admin-audit', 1, (r: { id: string }) => [r.id]);
const INBOUND_AUDIT = defineListing('audit-log', 2, (r: { created_at: string; request_id: string }) => [
  r.created_at,
  r.request_id,
]);

interface TimeRange {
  /** ISO 8601, inclusive. */
  since?: string;
  /** ISO 8601, exclusive. */
  until?: string;
}

export interface AdminAuditView {
  id: string;
  tenantId: string | null;
  actor: unknown;
  action: string;
  targetType: string;
  targetId: string;
  before: unknown;
  after: unknown;
  createdAt: string;
}

/** `tenant: null` is the gateway-wide view (every tenant and gateway-level actions). */
export async function queryAdminAudit(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string | null; action?: string; cursor?: string; limit: number } & TimeRange,
): Promise<Page<AdminAuditView>> {
  const tenantId = await authorizeAuditScope(ctx, actor, input.tenant);
  const rows = await listAdminAudit(ctx.db, {
    tenantId,
    action: input.action,
    since: dbTimeOf(input.since, 'since'),
    until: dbTimeOf(input.until, 'until'),
    after: startAfter(ADMIN_AUDIT, input)?.[0],
    limit: rowsToFetch(input),
  });
  return mapPage(pageOf(ADMIN_AUDIT, rows, input), (r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    actor: parseJson(r.actor),
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    before: r.before_state === null ? null : parseJson(r.before_state),
    after: r.after_state === null ? null : parseJson(r.after_state),
    createdAt: isoTime(r.created_at),
  }));
}

export interface InboundAuditSummary {
  requestId: string;
  tenantId: string | null;
  keyId: string | null;
  secretVersion: number | null;
  clientIp: string | null;
  method: string;
  path: string;
  query: string;
  responseStatus: number;
  latencyMs: number;
  outcome: AuditOutcome;
  requestBodyTruncated: boolean;
  responseBodyTruncated: boolean;
  createdAt: string;
}

export interface InboundAuditEntry extends InboundAuditSummary {
  requestHeaders: unknown;
  requestBody: string;
  responseHeaders: unknown;
  responseBody: string;
}

const SUMMARY_COLUMNS = [
  'request_id',
  'tenant_id',
  'key_id',
  'secret_version',
  'client_ip',
  'method',
  'path',
  'query',
  'response_status',
  'latency_ms',
  'outcome',
  'request_body_truncated',
  'response_body_truncated',
  'created_at',
] as const;

/** The inbound audit log, filtered by key, outcome and time. */
export async function queryInboundAudit(
  ctx: ServiceContext,
  actor: Actor,
  input: {
    tenant: string | null;
    keyId?: string;
    outcome?: AuditOutcome;
    cursor?: string;
    limit: number;
  } & TimeRange,
): Promise<Page<InboundAuditSummary>> {
  const tenantId = await authorizeAuditScope(ctx, actor, input.tenant);
  const after = startAfter(INBOUND_AUDIT, input);
  let query = ctx.db
    .selectFrom('audit_log')
    .select(SUMMARY_COLUMNS)
    .orderBy('created_at', 'desc')
    .orderBy('request_id', 'desc')
    .limit(rowsToFetch(input));
  if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
  if (input.keyId) query = query.where('key_id', '=', input.keyId);
  if (input.outcome) query = query.where('outcome', '=', input.outcome);
  const since = dbTimeOf(input.since, 'since');
  const until = dbTimeOf(input.until, 'until');
  if (since) query = query.where('created_at', '>=', since);
  if (until) query = query.where('created_at', '<', until);
  if (after !== undefined) {
    const [createdAt, requestId] = after;
    query = query.where((eb) =>
      eb.or([
        eb('created_at', '<', createdAt),
        eb.and([eb('created_at', '=', createdAt), eb('request_id', '<', requestId)]),
      ]),
    );
  }
  return mapPage(pageOf(INBOUND_AUDIT, await query.execute(), input), toSummary);
}

/** One inbound audit row in full (headers and capped bodies); 404 outside the caller's tenant. */
export async function getInboundAuditEntry(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string | null; requestId: string },
): Promise<InboundAuditEntry> {
  const tenantId = await authorizeAuditScope(ctx, actor, input.tenant);
  let query = ctx.db.selectFrom('audit_log').selectAll().where('request_id', '=', input.requestId);
  if (tenantId !== null) query = query.where('tenant_id', '=', tenantId);
  const row = await query.executeTakeFirst();
  if (!row) throw new KeygateError('KG_NOT_FOUND', `audit entry ${input.requestId} not found`);
  return {
    ...toSummary(row),
    requestHeaders: parseJson(row.request_headers),
    requestBody: row.request_body,
    responseHeaders: parseJson(row.response_headers),
    responseBody: row.response_body,
  };
}

async function authorizeAuditScope(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string | null,
): Promise<string | null> {
  if (tenant === null) {
    authorize(actor, 'audit.read', null);
    return null;
  }
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'audit.read', tenantId);
  return tenantId;
}

function toSummary(r: Pick<AuditLogRow, (typeof SUMMARY_COLUMNS)[number]>): InboundAuditSummary {
  return {
    requestId: r.request_id,
    tenantId: r.tenant_id,
    keyId: r.key_id,
    secretVersion: r.secret_version === null ? null : Number(r.secret_version),
    clientIp: r.client_ip,
    method: r.method,
    path: r.path,
    query: r.query,
    responseStatus: Number(r.response_status),
    latencyMs: Number(r.latency_ms),
    outcome: r.outcome,
    requestBodyTruncated: Boolean(Number(r.request_body_truncated)),
    responseBodyTruncated: Boolean(Number(r.response_body_truncated)),
    createdAt: isoTime(r.created_at),
  };
}

function dbTimeOf(iso: string | undefined, field: string): string | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw invalid(field, 'must be an ISO 8601 date-time');
  return toDbTime(ms);
}

function invalid(path: string, message: string): KeygateError {
  return new KeygateError('KG_VALIDATION_FAILED', `${path}: ${message}`, { errors: [{ path, message }] });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
