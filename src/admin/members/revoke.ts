import { createRoute, z } from '@hono/zod-openapi';
import { revokeAdminToken } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, idParam, noContent, tenantParam } from '../schemas.ts';

export const revokeMemberRoute = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/tenants/{tenant}/members/{tokenId}`,
  operationId: 'revokeMember',
  tags: ['members'],
  summary: 'Revoke a member (admin token); it stops working at once',
  security: BEARER,
  'x-keygate-permission': 'member.manage',
  request: { params: z.object({ tenant: tenantParam, tokenId: idParam('tokenId', 'Admin token id') }) },
  responses: { ...noContent, ...errorResponses(404, 409) },
});

export function registerRevokeMember(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(revokeMemberRoute, async (c) => {
    const { tenant, tokenId } = c.req.valid('param');
    await revokeAdminToken(ctx, c.var.actor, { tenant, id: tokenId });
    return c.body(null, 204);
  });
}
