import { z } from '@hono/zod-openapi';
import { toTenantView } from '../../services/tenants.ts';
import type { Tenant } from '../../storage/schema.ts';

export const TenantSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: z.string() })
  .openapi('Tenant');

export function toTenant(t: Tenant): z.infer<typeof TenantSchema> {
  return toTenantView(t);
}
