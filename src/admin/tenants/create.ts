import { createRoute, z } from '@hono/zod-openapi';
import { createTenant } from '../../services/tenants.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent } from '../schemas.ts';
import { TenantSchema, toTenant } from './schema.ts';

export const createTenantRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants`,
  operationId: 'createTenant',
  tags: ['tenants'],
  summary: 'Create a tenant',
  security: BEARER,
  'x-keygate-permission': 'tenant.create',
  request: {
    body: jsonBody(
      z.object({
        name: z
          .string()
          .openapi({ description: '1-63 of a-z 0-9 _ -, starting alphanumeric', example: 'acme' }),
      }),
    ),
  },
  responses: { 201: jsonContent(TenantSchema, 'The new tenant'), ...errorResponses(400, 409, 415) },
});

export function registerCreateTenant(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(createTenantRoute, async (c) => {
    const tenant = await createTenant(ctx, c.var.actor, c.req.valid('json'));
    return c.json(toTenant(tenant), 201);
  });
}
