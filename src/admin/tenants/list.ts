import { createRoute } from '@hono/zod-openapi';
import { listTenants } from '../../services/tenants.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, PageQuery, pageSchema } from '../schemas.ts';
import { TenantSchema, toTenant } from './schema.ts';

export const listTenantsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants`,
  operationId: 'listTenants',
  tags: ['tenants'],
  summary: 'List tenants (a tenant role sees only its own)',
  security: BEARER,
  'x-keygate-permission': 'tenant.list',
  request: { query: PageQuery },
  responses: {
    200: jsonContent(pageSchema(TenantSchema), 'A page of tenants, by name'),
    ...errorResponses(400),
  },
});

export function registerListTenants(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantsRoute, async (c) => {
    const page = await listTenants(ctx, c.var.actor, c.req.valid('query'));
    return c.json({ items: page.items.map(toTenant), nextCursor: page.nextCursor }, 200);
  });
}
