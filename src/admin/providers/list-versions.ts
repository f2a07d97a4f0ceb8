import { createRoute } from '@hono/zod-openapi';
import { listProviderVersions } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonContent,
  PageQuery,
  ProviderParams,
  pageSchema,
} from '../schemas.ts';
import { toVersionSummary, VersionSummarySchema } from './schema.ts';

export const listVersionsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/versions`,
  operationId: 'listProviderVersions',
  tags: ['providers'],
  summary: "List a provider's versions, newest first",
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: { params: ProviderParams, query: PageQuery },
  responses: {
    200: jsonContent(pageSchema(VersionSummarySchema), 'A page of versions, newest first'),
    ...errorResponses(400, 404),
  },
});

export function registerListVersions(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listVersionsRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const page = await listProviderVersions(ctx, c.var.actor, tenant, provider, c.req.valid('query'));
    return c.json({ items: page.items.map(toVersionSummary), nextCursor: page.nextCursor }, 200);
  });
}
