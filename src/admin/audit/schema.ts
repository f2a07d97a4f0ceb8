import { z } from '@hono/zod-openapi';
import type { AdminAuditView, InboundAuditEntry, InboundAuditSummary } from '../../services/audit-queries.ts';

export const OUTCOMES = [
  'ok',
  'bad_request',
  'bad_signature',
  'replayed',
  'unknown_key',
  'revoked_key',
  'forbidden',
  'not_found',
  'too_large',
  'rate_limited',
  'upstream_error',
  'error',
] as const;

export const AdminAuditEntrySchema = z
  .object({
    id: z.string(),
    tenantId: z.string().nullable(),
    actor: z.unknown().openapi({ description: 'Who acted: {kind: "cli"} or {kind: "admin", tokenId, role}' }),
    action: z.string().openapi({ example: 'provider.activate' }),
    targetType: z.string(),
    targetId: z.string(),
    before: z.unknown().openapi({ description: 'State before the change; secrets masked' }),
    after: z.unknown().openapi({ description: 'State after the change; secrets masked' }),
    createdAt: z.string(),
  })
  .openapi('AdminAuditEntry');

export const InboundAuditSummarySchema = z
  .object({
    requestId: z.string(),
    tenantId: z.string().nullable(),
    keyId: z.string().nullable(),
    secretVersion: z.number().int().nullable(),
    clientIp: z.string().nullable(),
    method: z.string(),
    path: z.string(),
    query: z.string(),
    responseStatus: z.number().int(),
    latencyMs: z.number(),
    outcome: z.enum(OUTCOMES),
    requestBodyTruncated: z.boolean(),
    responseBodyTruncated: z.boolean(),
    createdAt: z.string(),
  })
  .openapi('InboundAuditSummary');

export const InboundAuditEntrySchema = InboundAuditSummarySchema.extend({
  requestHeaders: z.unknown().openapi({ description: 'Credentials redacted' }),
  requestBody: z.string(),
  responseHeaders: z.unknown(),
  responseBody: z.string(),
}).openapi('InboundAuditEntry');

export function toAdminAuditEntry(v: AdminAuditView): z.infer<typeof AdminAuditEntrySchema> {
  return v;
}

export function toInboundSummary(v: InboundAuditSummary): z.infer<typeof InboundAuditSummarySchema> {
  return v;
}

export function toInboundEntry(v: InboundAuditEntry): z.infer<typeof InboundAuditEntrySchema> {
  return v;
}
