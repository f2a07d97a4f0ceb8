import { createRoute, z } from '@hono/zod-openapi';
import { createServiceToken } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent, TenantParams } from '../schemas.ts';
import { CreatedServiceTokenSchema } from './schema.ts';

export const createServiceTokenRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/service-tokens`,
  operationId: 'createServiceToken',
  tags: ['service tokens'],
  summary: 'Create a service token for the outbound proxy (returned once)',
  security: BEARER,
  'x-keygate-permission': 'service-token.manage',
  request: {
    params: TenantParams,
    body: jsonBody(z.object({ name: z.string().openapi({ example: 'billing-service' }) })),
  },
  responses: {
    201: jsonContent(CreatedServiceTokenSchema, 'The new token'),
    ...errorResponses(400, 404, 415),
  },
});

export function registerCreateServiceToken(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(createServiceTokenRoute, async (c) => {
    const { tenant } = c.req.valid('param');
    const created = await createServiceToken(ctx, c.var.actor, { tenant, name: c.req.valid('json').name });
    return c.json(
      { id: created.id, name: created.name, tenantId: created.tenantId!, token: created.token },
      201,
    );
  });
}
