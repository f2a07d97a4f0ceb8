import { mapPage } from '../../services/paging.ts';
import { listTenants } from '../../services/tenants.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, listRoute } from '../schemas.ts';
import { TenantSchema, toTenant } from './schema.ts';

export const listTenantsRoute = listRoute({
  path: `${API_PREFIX}/tenants`,
  operationId: 'listTenants',
  tags: ['tenants'],
  summary: 'List tenants (a tenant role sees only its own)',
  permission: 'tenant.list',
  item: TenantSchema,
  description: 'A page of tenants, by name',
});

export function registerListTenants(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantsRoute, async (c) => {
    const page = await listTenants(ctx, c.var.actor, c.req.valid('query'));
    return c.json(mapPage(page, toTenant), 200);
  });
}
