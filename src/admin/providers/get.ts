import { createRoute } from '@hono/zod-openapi';
import { getProvider } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, ProviderParams } from '../schemas.ts';
import { ProviderSchema, toProvider } from './schema.ts';

export const getProviderRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}`,
  operationId: 'getProvider',
  tags: ['providers'],
  summary: 'Get a provider: active version and the revision to send when activating',
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: { params: ProviderParams },
  responses: { 200: jsonContent(ProviderSchema, 'The provider'), ...errorResponses(404) },
});

export function registerGetProvider(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(getProviderRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    return c.json(toProvider(await getProvider(ctx, c.var.actor, tenant, provider)), 200);
  });
}
