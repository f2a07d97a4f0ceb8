import { z } from '@hono/zod-openapi';
import type { SecretInfo } from '../../secrets/secret-store.ts';
import { idParam, providerParam, tenantParam } from '../schemas.ts';

/** What listing shows of a secret: where it is and when it changed. Never the value. */
export const SecretMetadataSchema = z
  .object({ provider: z.string(), name: z.string(), updatedAt: z.string() })
  .openapi('SecretMetadata');

export const SecretParams = z.object({
  tenant: tenantParam,
  provider: providerParam,
  name: idParam('name', 'Secret name, e.g. AppSecret'),
});

export function toSecretMetadata(s: SecretInfo): z.infer<typeof SecretMetadataSchema> {
  return { provider: s.provider, name: s.name, updatedAt: s.updatedAt };
}
