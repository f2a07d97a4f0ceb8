import { createRoute, z } from '@hono/zod-openapi';
import { diffProviderVersions } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, ProviderParams, versionRef } from '../schemas.ts';

const DiffSchema = z
  .object({
    provider: z.string(),
    from: z.number().int(),
    to: z.number().int(),
    identical: z.boolean(),
    unified: z.string().openapi({ description: '`diff -u` text; empty when identical' }),
    lines: z.array(
      z.object({
        op: z.enum(['equal', 'add', 'remove']),
        text: z.string(),
        oldLine: z.number().int().optional(),
        newLine: z.number().int().optional(),
      }),
    ),
  })
  .openapi('ProviderVersionDiff');

export const diffVersionsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/diff`,
  operationId: 'diffProviderVersions',
  tags: ['providers'],
  summary: 'Line diff of two versions (pretty JSON with sorted keys; scripts line by line)',
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: {
    params: ProviderParams,
    query: z.object({
      from: versionRef.openapi({ description: 'Old version number or `active`', example: 'active' }),
      to: versionRef.openapi({ description: 'New version number or `active`', example: 2 }),
    }),
  },
  responses: { 200: jsonContent(DiffSchema, 'The diff'), ...errorResponses(400, 404) },
});

export function registerDiffVersions(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(diffVersionsRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const { from, to } = c.req.valid('query');
    return c.json(await diffProviderVersions(ctx, c.var.actor, { tenant, provider, from, to }), 200);
  });
}
