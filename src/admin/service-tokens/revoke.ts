import { createRoute, z } from '@hono/zod-openapi';
import { revokeServiceToken } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, idParam, noContent, tenantParam } from '../schemas.ts';

export const revokeServiceTokenRoute = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/tenants/{tenant}/service-tokens/{tokenId}`,
  operationId: 'revokeServiceToken',
  tags: ['service tokens'],
  summary: 'Revoke a service token',
  security: BEARER,
  'x-keygate-permission': 'service-token.manage',
  request: { params: z.object({ tenant: tenantParam, tokenId: idParam('tokenId', 'Service token id') }) },
  responses: { ...noContent, ...errorResponses(404, 409) },
});

export function registerRevokeServiceToken(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(revokeServiceTokenRoute, async (c) => {
    const { tenant, tokenId } = c.req.valid('param');
    await revokeServiceToken(ctx, c.var.actor, tenant, tokenId);
    return c.body(null, 204);
  });
}
