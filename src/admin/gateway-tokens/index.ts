/** Gateway-wide admin tokens (role gateway_admin, no tenant): create, list, revoke. */
import { createRoute, z } from '@hono/zod-openapi';
import { mapPage } from '../../services/paging.ts';
import { createAdminToken, listAdminTokens, revokeAdminToken } from '../../services/tokens.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  AdminTokenSchema,
  CreatedAdminTokenSchema,
  expiresInSeconds,
  toAdminToken,
  toCreatedAdminToken,
} from '../members/schema.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  idParam,
  jsonBody,
  jsonContent,
  listRoute,
  noContent,
} from '../schemas.ts';

export const createGatewayTokenRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/admin-tokens`,
  operationId: 'createGatewayAdminToken',
  tags: ['gateway admin tokens'],
  summary: 'Create a gateway_admin token (returned once)',
  security: BEARER,
  'x-keygate-permission': 'gateway-token.manage',
  request: { body: jsonBody(z.object({ name: z.string(), expiresInSeconds })) },
  responses: { 201: jsonContent(CreatedAdminTokenSchema, 'The new token'), ...errorResponses(400, 415) },
});

export const listGatewayTokensRoute = listRoute({
  path: `${API_PREFIX}/admin-tokens`,
  operationId: 'listGatewayAdminTokens',
  tags: ['gateway admin tokens'],
  summary: 'List gateway_admin tokens',
  permission: 'gateway-token.manage',
  item: AdminTokenSchema,
  description: 'A page of gateway admin tokens, oldest first',
});

export const revokeGatewayTokenRoute = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/admin-tokens/{tokenId}`,
  operationId: 'revokeGatewayAdminToken',
  tags: ['gateway admin tokens'],
  summary: 'Revoke a gateway_admin token',
  security: BEARER,
  'x-keygate-permission': 'gateway-token.manage',
  request: { params: z.object({ tokenId: idParam('tokenId', 'Admin token id') }) },
  responses: { ...noContent, ...errorResponses(404, 409) },
});

export function registerGatewayTokenRoutes(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(createGatewayTokenRoute, async (c) => {
    const body = c.req.valid('json');
    const created = await createAdminToken(ctx, c.var.actor, {
      tenant: null,
      role: 'gateway_admin',
      name: body.name,
      expiresInSeconds: body.expiresInSeconds ?? null,
    });
    return c.json(toCreatedAdminToken(created), 201);
  });
  app.openapi(listGatewayTokensRoute, async (c) => {
    const page = await listAdminTokens(ctx, c.var.actor, { tenant: null, ...c.req.valid('query') });
    return c.json(mapPage(page, toAdminToken), 200);
  });
  app.openapi(revokeGatewayTokenRoute, async (c) => {
    await revokeAdminToken(ctx, c.var.actor, { tenant: null, id: c.req.valid('param').tokenId });
    return c.body(null, 204);
  });
}
