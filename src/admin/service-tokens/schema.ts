import { z } from '@hono/zod-openapi';
import type { ServiceToken } from '../../storage/schema.ts';
import { isoTime } from '../schemas.ts';

export const ServiceTokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    tenantId: z.string(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
    status: z.enum(['active', 'revoked']),
  })
  .openapi('ServiceToken');

export const CreatedServiceTokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    tenantId: z.string(),
    token: z.string().openapi({ description: 'The bearer token for the outbound proxy. Shown once.' }),
  })
  .openapi('CreatedServiceToken');

export function toServiceToken(
  t: Pick<ServiceToken, 'id' | 'name' | 'tenant_id' | 'created_at' | 'revoked_at'>,
): z.infer<typeof ServiceTokenSchema> {
  return {
    id: t.id,
    name: t.name,
    tenantId: t.tenant_id,
    createdAt: isoTime(t.created_at),
    revokedAt: isoTime(t.revoked_at),
    status: t.revoked_at ? 'revoked' : 'active',
  };
}
