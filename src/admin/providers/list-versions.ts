import { mapPage } from '../../services/paging.ts';
import { listProviderVersions } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, listRoute, ProviderParams } from '../schemas.ts';
import { toVersionSummary, VersionSummarySchema } from './schema.ts';

export const listVersionsRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/versions`,
  operationId: 'listProviderVersions',
  tags: ['providers'],
  summary: "List a provider's versions, newest first",
  permission: 'provider.read',
  params: ProviderParams,
  item: VersionSummarySchema,
  description: 'A page of versions, newest first',
});

export function registerListVersions(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listVersionsRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const page = await listProviderVersions(ctx, c.var.actor, tenant, provider, c.req.valid('query'));
    return c.json(mapPage(page, toVersionSummary), 200);
  });
}
