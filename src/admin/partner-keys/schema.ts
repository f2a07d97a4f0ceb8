import { z } from '@hono/zod-openapi';
import type { PartnerKeyView } from '../../services/partner-keys.ts';

export const PolicySchema = z
  .object({
    algorithm: z.enum(['token-bucket', 'gcra']),
    rate: z.number().int().openapi({ description: 'Requests per period' }),
    periodSeconds: z.number().int(),
    burst: z.number().int(),
    onRedisDown: z.enum(['fail-open', 'fail-closed', 'local']),
  })
  .openapi('RateLimitPolicy');

/** The body of a policy change: fields left out keep their value. */
export const PolicyChangeSchema = z
  .object({
    algorithm: z.enum(['token-bucket', 'gcra']).optional(),
    rate: z.number().int().min(1).optional().openapi({ description: 'Requests per period' }),
    periodSeconds: z.number().int().min(1).optional(),
    burst: z.number().int().min(1).optional(),
    onRedisDown: z.enum(['fail-open', 'fail-closed', 'local']).optional(),
  })
  .openapi('RateLimitPolicyChange');

export const PartnerKeySchema = z
  .object({
    keyId: z.string(),
    tenantId: z.string(),
    name: z.string(),
    status: z.enum(['active', 'revoked']),
    policy: PolicySchema,
    liveSecretVersions: z
      .array(z.number().int())
      .openapi({ description: 'Secret versions that verify, oldest first' }),
    scopes: z.array(z.string()).openapi({ description: "The key's scopes, sorted; [] = none" }),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi('PartnerKey');

export const CreatedPartnerKeySchema = PartnerKeySchema.extend({
  secret: z.string().openapi({ description: 'The HMAC secret. Shown once.' }),
  secretVersion: z.number().int(),
}).openapi('CreatedPartnerKey');

export function toPartnerKey(v: PartnerKeyView): z.infer<typeof PartnerKeySchema> {
  return {
    keyId: v.keyId,
    tenantId: v.tenantId,
    name: v.name,
    status: v.status,
    policy: v.policy,
    liveSecretVersions: v.liveSecretVersions,
    scopes: v.scopes,
    createdAt: v.createdAt,
    revokedAt: v.revokedAt,
  };
}
