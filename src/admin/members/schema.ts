import { z } from '@hono/zod-openapi';
import {
  type AdminTokenView,
  type CreatedCredential,
  MAX_TOKEN_LIFETIME_S,
  MIN_TOKEN_LIFETIME_S,
} from '../../services/tokens.ts';
import type { AdminRole } from '../../storage/schema.ts';

const roleSchema = z.enum(['gateway_admin', 'tenant_admin', 'tenant_developer']);

export const AdminTokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: roleSchema,
    tenantId: z.string().nullable(),
    createdBy: z
      .string()
      .nullable()
      .openapi({ description: 'Id of the admin token that created it; null = CLI' }),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    createdAt: z.string(),
    status: z.enum(['active', 'expired', 'revoked']),
  })
  .openapi('AdminToken');

export const CreatedAdminTokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: roleSchema,
    tenantId: z.string().nullable(),
    expiresAt: z.string().nullable(),
    token: z.string().openapi({ description: 'The bearer token. Shown once; only its hash is stored.' }),
  })
  .openapi('CreatedAdminToken');

/** Lifetime of a new token; omitted = no expiry. */
export const expiresInSeconds = z
  .number()
  .int()
  .min(MIN_TOKEN_LIFETIME_S)
  .max(MAX_TOKEN_LIFETIME_S)
  .optional()
  .openapi({
    description: 'Lifetime in seconds (60 s to 10 years); omitted = no expiry',
    example: 2_592_000,
  });

export function toAdminToken(v: AdminTokenView): z.infer<typeof AdminTokenSchema> {
  return v;
}

export function toCreatedAdminToken(
  v: CreatedCredential & { role: AdminRole; expiresAt: string | null },
): z.infer<typeof CreatedAdminTokenSchema> {
  return {
    id: v.id,
    name: v.name,
    role: v.role,
    tenantId: v.tenantId,
    expiresAt: v.expiresAt,
    token: v.token,
  };
}
