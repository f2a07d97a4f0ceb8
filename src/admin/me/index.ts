/** `GET /admin/v1/me`: who the presented token is (any valid token may ask). */
import { createRoute, z } from '@hono/zod-openapi';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent } from '../schemas.ts';

export const meRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/me`,
  operationId: 'whoAmI',
  tags: ['members'],
  summary: 'The identity behind the presented admin token',
  security: BEARER,
  'x-keygate-permission': 'authenticated',
  responses: {
    200: jsonContent(
      z.object({
        tokenId: z.string(),
        role: z.enum(['gateway_admin', 'tenant_admin', 'tenant_developer']),
        tenantId: z.string().nullable(),
      }),
      'The caller',
    ),
    ...errorResponses(),
  },
});

export function registerMeRoutes(app: AdminApp, _deps: AdminDeps): void {
  app.openapi(meRoute, (c) => {
    const { tokenId, role, tenantId } = c.var.actor;
    return c.json({ tokenId, role, tenantId }, 200);
  });
}
