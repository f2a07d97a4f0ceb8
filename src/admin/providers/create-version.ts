import { createRoute } from '@hono/zod-openapi';
import { KeygateError } from '../../errors.ts';
import { applyProviderVersion } from '../../services/providers.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent, ProviderParams } from '../schemas.ts';
import { ProviderConfigSchema, toVersion, VersionSchema } from './schema.ts';

export const createVersionRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/versions`,
  operationId: 'createProviderVersion',
  tags: ['providers'],
  summary: 'Upload a provider config as a new draft version (creates the provider on first use)',
  description:
    'Scripts are compiled in the sandbox first; a syntax error is KG_SCRIPT_SYNTAX with line and column. ' +
    'The draft serves no traffic until it is activated. `name` must equal the provider in the path.',
  security: BEARER,
  'x-keygate-permission': 'provider.draft',
  request: { params: ProviderParams, body: jsonBody(ProviderConfigSchema) },
  responses: { 201: jsonContent(VersionSchema, 'The new draft version'), ...errorResponses(400, 404, 415) },
});

export function registerCreateVersion(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(createVersionRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const config = c.req.valid('json');
    if (config.name !== provider) {
      throw new KeygateError('KG_VALIDATION_FAILED', `name must be ${provider}, the provider in the path`, {
        errors: [{ path: 'name', message: 'must equal the provider in the path', in: 'body' }],
      });
    }
    const version = await applyProviderVersion(ctx, c.var.actor, { tenant, config, draft: true });
    return c.json(toVersion(version), 201);
  });
}
