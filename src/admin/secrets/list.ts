import { mapPage } from '../../services/paging.ts';
import { listSecrets } from '../../services/secrets.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, listRoute, ProviderParams, TenantParams } from '../schemas.ts';
import { SecretMetadataSchema, toSecretMetadata } from './schema.ts';

export const listTenantSecretsRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/secrets`,
  operationId: 'listTenantSecrets',
  tags: ['secrets'],
  summary: "List the names of a tenant's secrets, all providers (names and updatedAt only)",
  permission: 'secret.manage',
  params: TenantParams,
  item: SecretMetadataSchema,
  description: 'A page of secret names, by provider and name',
});

export const listProviderSecretsRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/secrets`,
  operationId: 'listProviderSecrets',
  tags: ['secrets'],
  summary: "List the names of a provider's secrets (names and updatedAt only)",
  permission: 'secret.manage',
  params: ProviderParams,
  item: SecretMetadataSchema,
  description: 'A page of secret names, by name',
});

export function registerListSecrets(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(listTenantSecretsRoute, async (c) => {
    const page = await listSecrets(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('query'),
    });
    return c.json(mapPage(page, toSecretMetadata), 200);
  });
  app.openapi(listProviderSecretsRoute, async (c) => {
    const page = await listSecrets(ctx, c.var.actor, { ...c.req.valid('param'), ...c.req.valid('query') });
    return c.json(mapPage(page, toSecretMetadata), 200);
  });
}
