import { mapPage } from '../../services/paging.ts';
import { listProviders } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, listRoute, TenantParams } from '../schemas.ts';
import { ProviderSchema, toProvider } from './schema.ts';

export const listProvidersRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/providers`,
  operationId: 'listProviders',
  tags: ['providers'],
  summary: "List a tenant's providers with their active version and revision",
  permission: 'provider.read',
  params: TenantParams,
  item: ProviderSchema,
  description: 'A page of providers, by name',
});

export function registerListProviders(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listProvidersRoute, async (c) => {
    const page = await listProviders(ctx, c.var.actor, c.req.valid('param').tenant, c.req.valid('query'));
    return c.json(mapPage(page, toProvider), 200);
  });
}
