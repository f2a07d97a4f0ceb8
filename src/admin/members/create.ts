import { createRoute, z } from '@hono/zod-openapi';
import { createAdminToken } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent, TenantParams } from '../schemas.ts';
import { CreatedAdminTokenSchema, expiresInSeconds, toCreatedAdminToken } from './schema.ts';

export const createMemberRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/members`,
  operationId: 'createMember',
  tags: ['members'],
  summary: 'Create a member: an admin token with a tenant role (the token is returned once)',
  security: BEARER,
  'x-keygate-permission': 'member.manage',
  request: {
    params: TenantParams,
    body: jsonBody(
      z.object({
        name: z.string().openapi({ example: 'alice@acme.example' }),
        role: z.enum(['tenant_admin', 'tenant_developer']),
        expiresInSeconds,
      }),
    ),
  },
  responses: { 201: jsonContent(CreatedAdminTokenSchema, 'The new token'), ...errorResponses(400, 404, 415) },
});

export function registerCreateMember(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(createMemberRoute, async (c) => {
    const { tenant } = c.req.valid('param');
    const body = c.req.valid('json');
    const created = await createAdminToken(ctx, c.var.actor, {
      tenant,
      role: body.role,
      name: body.name,
      expiresInSeconds: body.expiresInSeconds ?? null,
    });
    return c.json(toCreatedAdminToken(created), 201);
  });
}
