import { z } from '@hono/zod-openapi';

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
