/** The inbound audit log (`audit_log`): one row per partner call, filtered by key, outcome and time. */
import { createRoute, z } from '@hono/zod-openapi';
import { getInboundAuditEntry, queryInboundAudit } from '../../services/audit-queries.ts';
import { mapPage } from '../../services/paging.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  idParam,
  jsonContent,
  pageQuery,
  pageSchema,
  TenantParams,
  tenantParam,
  timeRangeQuery,
} from '../schemas.ts';
import {
  InboundAuditEntrySchema,
  InboundAuditSummarySchema,
  OUTCOMES,
  toInboundEntry,
  toInboundSummary,
} from './schema.ts';

const query = z.object({
  keyId: z.string().max(100).optional().openapi({ description: 'Partner key id' }),
  outcome: z.enum(OUTCOMES).optional(),
  ...pageQuery,
  ...timeRangeQuery,
});
const listResponses = {
  200: jsonContent(pageSchema(InboundAuditSummarySchema), 'A page of calls, newest first'),
  ...errorResponses(400, 404),
};
const requestIdParam = idParam('requestId', 'The request id of the call');

export const listTenantAuditLogRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/audit-log`,
  operationId: 'listTenantAuditLog',
  tags: ['audit'],
  summary: "A tenant's inbound audit log (summaries; get one entry for headers and bodies)",
  security: BEARER,
  'x-keygate-permission': 'audit.read',
  request: { params: TenantParams, query },
  responses: listResponses,
});

export const getTenantAuditEntryRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/audit-log/{requestId}`,
  operationId: 'getTenantAuditEntry',
  tags: ['audit'],
  summary: 'One inbound call in full: headers (credentials redacted) and capped bodies',
  security: BEARER,
  'x-keygate-permission': 'audit.read',
  request: { params: z.object({ tenant: tenantParam, requestId: requestIdParam }) },
  responses: { 200: jsonContent(InboundAuditEntrySchema, 'The call'), ...errorResponses(404) },
});

export const listAuditLogRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/audit-log`,
  operationId: 'listAuditLog',
  tags: ['audit'],
  summary: 'The whole inbound audit log, including calls no tenant could be named for',
  security: BEARER,
  'x-keygate-permission': 'audit.read (gateway-wide)',
  request: { query },
  responses: listResponses,
});

export const getAuditEntryRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/audit-log/{requestId}`,
  operationId: 'getAuditEntry',
  tags: ['audit'],
  summary: 'One inbound call in full, any tenant',
  security: BEARER,
  'x-keygate-permission': 'audit.read (gateway-wide)',
  request: { params: z.object({ requestId: requestIdParam }) },
  responses: { 200: jsonContent(InboundAuditEntrySchema, 'The call'), ...errorResponses(404) },
});

export function registerAuditLogRoutes(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantAuditLogRoute, async (c) => {
    const page = await queryInboundAudit(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('query'),
    });
    return c.json(mapPage(page, toInboundSummary), 200);
  });
  app.openapi(getTenantAuditEntryRoute, async (c) => {
    const { tenant, requestId } = c.req.valid('param');
    return c.json(toInboundEntry(await getInboundAuditEntry(ctx, c.var.actor, { tenant, requestId })), 200);
  });
  app.openapi(listAuditLogRoute, async (c) => {
    const page = await queryInboundAudit(ctx, c.var.actor, { tenant: null, ...c.req.valid('query') });
    return c.json(mapPage(page, toInboundSummary), 200);
  });
  app.openapi(getAuditEntryRoute, async (c) => {
    const entry = await getInboundAuditEntry(ctx, c.var.actor, {
      tenant: null,
      requestId: c.req.valid('param').requestId,
    });
    return c.json(toInboundEntry(entry), 200);
  });
}
