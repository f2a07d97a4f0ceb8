import { createRoute } from '@hono/zod-openapi';
import { listProviders } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonContent,
  PageQuery,
  pageSchema,
  TenantParams,
} from '../schemas.ts';
import { ProviderSchema, toProvider } from './schema.ts';

export const listProvidersRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers`,
  operationId: 'listProviders',
  tags: ['providers'],
  summary: "List a tenant's providers with their active version and revision",
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: { params: TenantParams, query: PageQuery },
  responses: {
    200: jsonContent(pageSchema(ProviderSchema), 'A page of providers, by name'),
    ...errorResponses(400, 404),
  },
});

export function registerListProviders(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listProvidersRoute, async (c) => {
    const page = await listProviders(ctx, c.var.actor, c.req.valid('param').tenant, c.req.valid('query'));
    return c.json({ items: page.items.map(toProvider), nextCursor: page.nextCursor }, 200);
  });
}
