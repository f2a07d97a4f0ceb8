import { listServiceTokens } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, listRoute, TenantParams } from '../schemas.ts';
import { ServiceTokenSchema } from './schema.ts';

export const listServiceTokensRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/service-tokens`,
  operationId: 'listServiceTokens',
  tags: ['service tokens'],
  summary: "List a tenant's service tokens (never the tokens themselves)",
  permission: 'service-token.manage',
  params: TenantParams,
  item: ServiceTokenSchema,
  description: 'A page of service tokens, oldest first',
});

export function registerListServiceTokens(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listServiceTokensRoute, async (c) => {
    const page = await listServiceTokens(ctx, c.var.actor, c.req.valid('param').tenant, c.req.valid('query'));
    return c.json(page, 200);
  });
}
