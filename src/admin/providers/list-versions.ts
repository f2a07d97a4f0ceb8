import { createRoute, z } from '@hono/zod-openapi';
import { listProviderVersions } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, ProviderParams } from '../schemas.ts';
import { toVersionSummary, VersionSummarySchema } from './schema.ts';

export const listVersionsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/versions`,
  operationId: 'listProviderVersions',
  tags: ['providers'],
  summary: "List a provider's versions, newest first",
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: { params: ProviderParams },
  responses: {
    200: jsonContent(z.object({ items: z.array(VersionSummarySchema) }), 'Versions'),
    ...errorResponses(404),
  },
});

export function registerListVersions(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listVersionsRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const versions = await listProviderVersions(ctx, c.var.actor, tenant, provider);
    return c.json({ items: versions.map(toVersionSummary) }, 200);
  });
}
