import { createRoute, z } from '@hono/zod-openapi';
import { listSecrets } from '../../services/secrets.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonContent, ProviderParams, TenantParams } from '../schemas.ts';
import { SecretMetadataSchema, toSecretMetadata } from './schema.ts';

const SecretListSchema = z.object({ items: z.array(SecretMetadataSchema) });

export const listTenantSecretsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/secrets`,
  operationId: 'listTenantSecrets',
  tags: ['secrets'],
  summary: "List the names of a tenant's secrets, all providers (names and updatedAt only)",
  security: BEARER,
  'x-keygate-permission': 'secret.manage',
  request: { params: TenantParams },
  responses: { 200: jsonContent(SecretListSchema, 'Secret names'), ...errorResponses(404) },
});

export const listProviderSecretsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/secrets`,
  operationId: 'listProviderSecrets',
  tags: ['secrets'],
  summary: "List the names of a provider's secrets (names and updatedAt only)",
  security: BEARER,
  'x-keygate-permission': 'secret.manage',
  request: { params: ProviderParams },
  responses: { 200: jsonContent(SecretListSchema, 'Secret names'), ...errorResponses(404) },
});

export function registerListSecrets(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantSecretsRoute, async (c) => {
    const items = await listSecrets(ctx, c.var.actor, { tenant: c.req.valid('param').tenant });
    return c.json({ items: items.map(toSecretMetadata) }, 200);
  });
  app.openapi(listProviderSecretsRoute, async (c) => {
    const items = await listSecrets(ctx, c.var.actor, c.req.valid('param'));
    return c.json({ items: items.map(toSecretMetadata) }, 200);
  });
}
