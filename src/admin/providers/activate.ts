import { createRoute, z } from '@hono/zod-openapi';
import { activateProviderVersion } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent, ProviderParams } from '../schemas.ts';
import { ProviderSchema, toProvider } from './schema.ts';

export const activateVersionRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/activate`,
  operationId: 'activateProviderVersion',
  tags: ['providers'],
  summary: 'Activate a version (optimistic: 409 KG_VERSION_CONFLICT if the revision moved)',
  description:
    'Every keygate node serves the new version within a second (config events plus a revision poll).',
  security: BEARER,
  'x-keygate-permission': 'provider.activate',
  request: {
    params: ProviderParams,
    body: jsonBody(
      z.object({
        version: z.number().int().min(1),
        expectedRevision: z
          .number()
          .int()
          .min(0)
          .openapi({ description: 'The provider revision you last read (GET the provider)' }),
      }),
    ),
  },
  responses: {
    200: jsonContent(ProviderSchema, 'The provider, now on that version'),
    ...errorResponses(400, 404, 409, 415),
  },
});

export function registerActivateVersion(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(activateVersionRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const { version, expectedRevision } = c.req.valid('json');
    const view = await activateProviderVersion(ctx, c.var.actor, {
      tenant,
      provider,
      version,
      expectedRevision,
    });
    return c.json(toProvider(view), 200);
  });
}
