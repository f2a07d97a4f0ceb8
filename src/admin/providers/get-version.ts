import { createRoute, z } from '@hono/zod-openapi';
import { getProviderVersion } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonContent,
  providerParam,
  tenantParam,
  versionRef,
} from '../schemas.ts';
import { toVersion, VersionSchema } from './schema.ts';

export const getVersionRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/versions/{version}`,
  operationId: 'getProviderVersion',
  tags: ['providers'],
  summary: 'Get one version with its config (scripts included; secrets are never part of a config)',
  security: BEARER,
  'x-keygate-permission': 'provider.read',
  request: {
    params: z.object({
      tenant: tenantParam,
      provider: providerParam,
      version: versionRef.openapi({
        param: { name: 'version', in: 'path' },
        description: 'A version number or `active`',
      }),
    }),
  },
  responses: { 200: jsonContent(VersionSchema, 'The version'), ...errorResponses(400, 404) },
});

export function registerGetVersion(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(getVersionRoute, async (c) => {
    const { tenant, provider, version } = c.req.valid('param');
    return c.json(toVersion(await getProviderVersion(ctx, c.var.actor, { tenant, provider, version })), 200);
  });
}
