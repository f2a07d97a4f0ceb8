import { createRoute } from '@hono/zod-openapi';
import { listSecrets } from '../../services/secrets.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonContent,
  PageQuery,
  ProviderParams,
  pageSchema,
  TenantParams,
} from '../schemas.ts';
import { SecretMetadataSchema, toSecretMetadata } from './schema.ts';

const SecretListSchema = pageSchema(SecretMetadataSchema);

export const listTenantSecretsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/secrets`,
  operationId: 'listTenantSecrets',
  tags: ['secrets'],
  summary: "List the names of a tenant's secrets, all providers (names and updatedAt only)",
  security: BEARER,
  'x-keygate-permission': 'secret.manage',
  request: { params: TenantParams, query: PageQuery },
  responses: {
    200: jsonContent(SecretListSchema, 'A page of secret names, by provider and name'),
    ...errorResponses(400, 404),
  },
});

export const listProviderSecretsRoute = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/secrets`,
  operationId: 'listProviderSecrets',
  tags: ['secrets'],
  summary: "List the names of a provider's secrets (names and updatedAt only)",
  security: BEARER,
  'x-keygate-permission': 'secret.manage',
  request: { params: ProviderParams, query: PageQuery },
  responses: {
    200: jsonContent(SecretListSchema, 'A page of secret names, by name'),
    ...errorResponses(400, 404),
  },
});

export function registerListSecrets(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantSecretsRoute, async (c) => {
    const page = await listSecrets(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('query'),
    });
    return c.json({ items: page.items.map(toSecretMetadata), nextCursor: page.nextCursor }, 200);
  });
  app.openapi(listProviderSecretsRoute, async (c) => {
    const page = await listSecrets(ctx, c.var.actor, { ...c.req.valid('param'), ...c.req.valid('query') });
    return c.json({ items: page.items.map(toSecretMetadata), nextCursor: page.nextCursor }, 200);
  });
}
