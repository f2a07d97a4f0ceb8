import { mapPage } from '../../services/paging.ts';
import { listAdminTokens } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, listRoute, TenantParams } from '../schemas.ts';
import { AdminTokenSchema, toAdminToken } from './schema.ts';

export const listMembersRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/members`,
  operationId: 'listMembers',
  tags: ['members'],
  summary: "List a tenant's admin tokens (never the tokens themselves)",
  permission: 'member.manage',
  params: TenantParams,
  item: AdminTokenSchema,
  description: 'A page of members, oldest first',
});

export function registerListMembers(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listMembersRoute, async (c) => {
    const page = await listAdminTokens(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('query'),
    });
    return c.json(mapPage(page, toAdminToken), 200);
  });
}
