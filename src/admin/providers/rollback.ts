import { createRoute, z } from '@hono/zod-openapi';
import { rollbackProvider } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonContent,
  optionalJsonBody,
  ProviderParams,
} from '../schemas.ts';
import { ProviderSchema, toProvider } from './schema.ts';

export const rollbackRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/rollback`,
  operationId: 'rollbackProvider',
  tags: ['providers'],
  summary: 'Re-activate an earlier version (default: the newest one older than the active)',
  security: BEARER,
  'x-keygate-permission': 'provider.activate',
  request: {
    params: ProviderParams,
    body: optionalJsonBody(
      z.object({
        to: z.number().int().min(1).optional(),
        expectedRevision: z
          .number()
          .int()
          .min(0)
          .optional()
          .openapi({ description: 'Optimistic check, as for activate' }),
      }),
    ),
  },
  responses: {
    200: jsonContent(ProviderSchema, 'The provider, now on that version'),
    ...errorResponses(400, 404, 409, 415),
  },
});

export function registerRollback(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(rollbackRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const { to, expectedRevision } = c.req.valid('json');
    return c.json(
      toProvider(await rollbackProvider(ctx, c.var.actor, { tenant, provider, to, expectedRevision })),
      200,
    );
  });
}
