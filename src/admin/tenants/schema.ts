import { z } from '@hono/zod-openapi';
import type { Tenant } from '../../storage/schema.ts';
import { isoTime } from '../schemas.ts';

export const TenantSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: z.string() })
  .openapi('Tenant');

export function toTenant(t: Tenant): z.infer<typeof TenantSchema> {
  return { id: t.id, name: t.name, createdAt: isoTime(t.created_at) };
}
