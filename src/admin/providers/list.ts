import { createRoute, z } from '@hono/zod-openapi';
import { listProviders } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, TenantParams } from '../schemas.ts';
import { ProviderSchema, toProvider } from './schema.ts';

export const listProvidersRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers`,
  operationId: 'listProviders',
  tags: ['providers'],
  summary: "List a tenant's providers with their active version and revision",
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: { params: TenantParams },
  responses: {
    200: jsonContent(z.object({ items: z.array(ProviderSchema) }), 'Providers'),
    ...errorResponses(404),
  },
});

export function registerListProviders(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listProvidersRoute, async (c) => {
    const providers = await listProviders(ctx, c.var.actor, c.req.valid('param').tenant);
    return c.json({ items: providers.map(toProvider) }, 200);
  });
}
