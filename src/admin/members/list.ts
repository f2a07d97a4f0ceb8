import { createRoute } from '@hono/zod-openapi';
import { listAdminTokens } from '../../services/tokens.ts';
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
import { AdminTokenSchema, toAdminToken } from './schema.ts';

export const listMembersRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/members`,
  operationId: 'listMembers',
  tags: ['members'],
  summary: "List a tenant's admin tokens (never the tokens themselves)",
  security: BEARER,
  'x-keygate-permission': 'member.manage',
  request: { params: TenantParams, query: PageQuery },
  responses: {
    200: jsonContent(pageSchema(AdminTokenSchema), 'A page of members, oldest first'),
    ...errorResponses(400, 404),
  },
});

export function registerListMembers(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listMembersRoute, async (c) => {
    const page = await listAdminTokens(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('query'),
    });
    return c.json({ items: page.items.map(toAdminToken), nextCursor: page.nextCursor }, 200);
  });
}
