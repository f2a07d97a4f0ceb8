/** The admin audit trail: every change made through the API or the CLI, newest first. */
import { createRoute, z } from '@hono/zod-openapi';
import { queryAdminAudit } from '../../services/audit-queries.ts';
import { mapPage } from '../../services/paging.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonContent,
  pageQuery,
  pageSchema,
  TenantParams,
  timeRangeQuery,
} from '../schemas.ts';
import { AdminAuditEntrySchema, toAdminAuditEntry } from './schema.ts';

const query = z.object({
  action: z.string().max(64).optional().openapi({ description: 'Exact action, e.g. provider.activate' }),
  ...pageQuery,
  ...timeRangeQuery,
});
const responses = {
  200: jsonContent(pageSchema(AdminAuditEntrySchema), 'A page of entries, newest first'),
  ...errorResponses(400, 404),
};

export const listTenantAdminAuditRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/admin-audit`,
  operationId: 'listTenantAdminAudit',
  tags: ['audit'],
  summary: "A tenant's admin audit log (who changed what, before / after, secrets masked)",
  security: BEARER,
  'x-keygate-permission': 'audit.read',
  request: { params: TenantParams, query },
  responses,
});

export const listAdminAuditRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/admin-audit`,
  operationId: 'listAdminAudit',
  tags: ['audit'],
  summary: 'The whole admin audit log: every tenant and gateway-level changes',
  security: BEARER,
  'x-keygate-permission': 'audit.read (gateway-wide)',
  request: { query },
  responses,
});

export function registerAdminAuditRoutes(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantAdminAuditRoute, async (c) => {
    const page = await queryAdminAudit(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('query'),
    });
    return c.json(mapPage(page, toAdminAuditEntry), 200);
  });
  app.openapi(listAdminAuditRoute, async (c) => {
    const page = await queryAdminAudit(ctx, c.var.actor, { tenant: null, ...c.req.valid('query') });
    return c.json(mapPage(page, toAdminAuditEntry), 200);
  });
}
