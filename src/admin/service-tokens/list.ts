import { createRoute, z } from '@hono/zod-openapi';
import { listServiceTokens } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, TenantParams } from '../schemas.ts';
import { ServiceTokenSchema, toServiceToken } from './schema.ts';

export const listServiceTokensRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/service-tokens`,
  operationId: 'listServiceTokens',
  tags: ['service tokens'],
  summary: "List a tenant's service tokens (never the tokens themselves)",
  security: BEARER,
  'x-keygate-permission': 'service-token.manage',
  request: { params: TenantParams },
  responses: {
    200: jsonContent(z.object({ items: z.array(ServiceTokenSchema) }), 'Service tokens'),
    ...errorResponses(404),
  },
});

export function registerListServiceTokens(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listServiceTokensRoute, async (c) => {
    const rows = await listServiceTokens(ctx, c.var.actor, c.req.valid('param').tenant);
    return c.json({ items: rows.map(toServiceToken) }, 200);
  });
}
