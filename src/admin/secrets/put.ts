import { createRoute, z } from '@hono/zod-openapi';
import { setSecret } from '../../services/secrets.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent } from '../schemas.ts';
import { SecretMetadataSchema, SecretParams } from './schema.ts';

export const putSecretRoute = createRoute({
  method: 'put',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/secrets/{name}`,
  operationId: 'setSecret',
  tags: ['secrets'],
  summary: 'Set or rotate a provider secret (write-only: the value is never returned)',
  security: BEARER,
  'x-keygate-permission': 'secret.manage',
  request: {
    params: SecretParams,
    body: jsonBody(
      z.object({
        value: z.string().min(1).max(65536),
        sensitive: z
          .boolean()
          .optional()
          .openapi({ description: 'Mask it in proxied responses; default true for all but AppKey' }),
      }),
    ),
  },
  responses: {
    200: jsonContent(SecretMetadataSchema, 'Rotated'),
    201: jsonContent(SecretMetadataSchema, 'Created'),
    ...errorResponses(400, 404, 415),
  },
});

export function registerPutSecret(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(putSecretRoute, async (c) => {
    const { tenant, provider, name } = c.req.valid('param');
    const { value, sensitive } = c.req.valid('json');
    const r = await setSecret(ctx, c.var.actor, { tenant, provider, name, value, sensitive });
    return c.json({ provider: r.provider, name: r.name, updatedAt: r.updatedAt }, r.created ? 201 : 200);
  });
}
