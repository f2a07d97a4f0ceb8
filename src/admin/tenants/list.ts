import { createRoute, z } from '@hono/zod-openapi';
import { listTenants } from '../../services/tenants.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent } from '../schemas.ts';
import { TenantSchema, toTenant } from './schema.ts';

export const listTenantsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants`,
  operationId: 'listTenants',
  tags: ['tenants'],
  summary: 'List tenants (a tenant role sees only its own)',
  security: BEARER,
  'x-keygate-permission': 'tenant.list',
  responses: {
    200: jsonContent(z.object({ items: z.array(TenantSchema) }), 'Tenants by name'),
    ...errorResponses(),
  },
});

export function registerListTenants(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantsRoute, async (c) => {
    const tenants = await listTenants(ctx, c.var.actor);
    return c.json({ items: tenants.map(toTenant) }, 200);
  });
}
