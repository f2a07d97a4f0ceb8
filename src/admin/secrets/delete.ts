import { createRoute } from '@hono/zod-openapi';
import { deleteSecret } from '../../services/secrets.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, noContent } from '../schemas.ts';
import { SecretParams } from './schema.ts';

export const deleteSecretRoute = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/secrets/{name}`,
  operationId: 'deleteSecret',
  tags: ['secrets'],
  summary: 'Delete a provider secret',
  security: BEARER,
  'x-keygate-permission': 'secret.manage',
  request: { params: SecretParams },
  responses: { ...noContent, ...errorResponses(400, 404) },
});

export function registerDeleteSecret(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(deleteSecretRoute, async (c) => {
    await deleteSecret(ctx, c.var.actor, c.req.valid('param'));
    return c.body(null, 204);
  });
}
