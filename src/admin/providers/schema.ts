import { z } from '@hono/zod-openapi';
import { sampleRequestSchema } from '../../outbound/dry-run.ts';
import { providerConfigSchema } from '../../services/provider-config.ts';
import type { ProviderView, VersionView } from '../../services/providers.ts';

/**
 * The provider config document (DESIGN.md "Outbound proxy"), the one schema the services validate
 * with. Built with plain zod before @hono/zod-openapi extends it, so it is named with `.meta({ id })`.
 */
export const ProviderConfigSchema = providerConfigSchema.meta({ id: 'ProviderConfig' });

export const ProviderSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    activeVersion: z.number().int().nullable(),
    revision: z
      .number()
      .int()
      .openapi({ description: 'Bumped by every activation / rollback; send it as expectedRevision' }),
    updatedAt: z.string(),
  })
  .openapi('Provider');

export const VersionSummarySchema = z
  .object({
    provider: z.string(),
    version: z.number().int(),
    active: z.boolean(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('ProviderVersionSummary');

export const VersionSchema = VersionSummarySchema.extend({ config: ProviderConfigSchema }).openapi(
  'ProviderVersion',
);

export const SampleRequestSchema = sampleRequestSchema.meta({ id: 'SampleRequest' });

export const DryRunResultSchema = z
  .object({
    provider: z.string(),
    version: z.number().int(),
    request: z.object({
      method: z.string(),
      url: z.string(),
      headers: z.record(z.string(), z.string()),
      body: z.string().nullable(),
    }),
    logs: z.array(z.string()),
    timing: z.object({ scriptUs: z.number().nullable(), path: z.enum(['sync', 'async']).nullable() }),
    secrets: z.enum(['real', 'stand-in']).openapi({
      description:
        "stand-in: the caller may not read the tenant's secrets (a tenant developer), so the run used stand-ins of the same shape and a stand-in access token",
    }),
    response: z
      .object({
        status: z.number().int(),
        headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
        body: z.string(),
      })
      .optional(),
  })
  .openapi('DryRunResult', { description: 'The signed request that would be sent, secrets masked' });

export function toProvider(p: ProviderView): z.infer<typeof ProviderSchema> {
  return p;
}

export function toVersionSummary(v: VersionView): z.infer<typeof VersionSummarySchema> {
  return {
    provider: v.provider,
    version: v.version,
    active: v.active,
    createdBy: v.createdBy,
    createdAt: v.createdAt,
  };
}

export function toVersion(v: VersionView): z.infer<typeof VersionSchema> {
  return { ...toVersionSummary(v), config: v.config };
}
