import { createRoute } from '@hono/zod-openapi';
import { getTenant } from '../../services/tenants.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, TenantParams } from '../schemas.ts';
import { TenantSchema, toTenant } from './schema.ts';

export const getTenantRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}`,
  operationId: 'getTenant',
  tags: ['tenants'],
  summary: 'Get a tenant by id or name',
  security: BEARER,
  'x-keygate-permission': 'tenant.read',
  request: { params: TenantParams },
  responses: { 200: jsonContent(TenantSchema, 'The tenant'), ...errorResponses(400, 404) },
});

export function registerGetTenant(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(getTenantRoute, async (c) => {
    const tenant = await getTenant(ctx, c.var.actor, c.req.valid('param').tenant);
    return c.json(toTenant(tenant), 200);
  });
}
