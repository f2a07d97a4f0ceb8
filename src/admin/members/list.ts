import { createRoute, z } from '@hono/zod-openapi';
import { listAdminTokens } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, TenantParams } from '../schemas.ts';
import { AdminTokenSchema, toAdminToken } from './schema.ts';

export const listMembersRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/members`,
  operationId: 'listMembers',
  tags: ['members'],
  summary: "List a tenant's admin tokens (never the tokens themselves)",
  security: BEARER,
  'x-keygate-permission': 'member.manage',
  request: { params: TenantParams },
  responses: {
    200: jsonContent(z.object({ items: z.array(AdminTokenSchema) }), 'Members'),
    ...errorResponses(404),
  },
});

export function registerListMembers(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listMembersRoute, async (c) => {
    const items = await listAdminTokens(ctx, c.var.actor, { tenant: c.req.valid('param').tenant });
    return c.json({ items: items.map(toAdminToken) }, 200);
  });
}
