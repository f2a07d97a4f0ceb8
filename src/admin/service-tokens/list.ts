import { createRoute } from '@hono/zod-openapi';
import { listServiceTokens } from '../../services/tokens.ts';
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
import { ServiceTokenSchema } from './schema.ts';

export const listServiceTokensRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/service-tokens`,
  operationId: 'listServiceTokens',
  tags: ['service tokens'],
  summary: "List a tenant's service tokens (never the tokens themselves)",
  security: BEARER,
  'x-keygate-permission': 'service-token.manage',
  request: { params: TenantParams, query: PageQuery },
  responses: {
    200: jsonContent(pageSchema(ServiceTokenSchema), 'A page of service tokens, oldest first'),
    ...errorResponses(400, 404),
  },
});

export function registerListServiceTokens(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listServiceTokensRoute, async (c) => {
    const page = await listServiceTokens(ctx, c.var.actor, c.req.valid('param').tenant, c.req.valid('query'));
    return c.json(page, 200);
  });
}
