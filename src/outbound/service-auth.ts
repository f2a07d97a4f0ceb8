/**
 * Service-token authentication for the proxy. Token hashes resolve to a tenant through a small
 * in-memory cache so the hot path makes no database round trip; entries are rechecked in the
 * background after `ttlMs`. A revocation announced on the config events drops the tenant's entries
 * at once; `ttlMs` bounds it when an announcement is lost.
 */
import { KeygateError } from '../errors.ts';
import { hashToken } from '../ids.ts';
import type { ConfigEvents } from '../services/context.ts';
import { SERVICE_TOKENS_TOPIC } from '../services/tokens.ts';
import type { Db } from '../storage/db.ts';

interface Entry {
  tenantId: string | null;
  checkedAt: number;
  refreshing?: Promise<void>;
}

export type ServiceAuthenticator = (authorization: string | undefined) => Promise<{ tenantId: string }>;

export function createServiceAuthenticator(
  db: Db,
  opts: { ttlMs?: number; maxEntries?: number; configEvents?: ConfigEvents } = {},
): ServiceAuthenticator {
  const { ttlMs = 5_000, maxEntries = 10_000, configEvents } = opts;
  const cache = new Map<string, Entry>();
  configEvents?.subscribe((tenantId, topic) => {
    if (topic !== SERVICE_TOKENS_TOPIC) return;
    for (const [hash, entry] of cache) if (entry.tenantId === tenantId) cache.delete(hash);
  });

  async function lookup(hash: string): Promise<string | null> {
    const row = await db
      .selectFrom('service_tokens')
      .select('tenant_id')
      .where('token_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row?.tenant_id ?? null;
  }

  return async function authenticateService(authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match)
      throw new KeygateError('KG_UNAUTHENTICATED', 'Authorization: Bearer <service token> required');
    const hash = hashToken(match[1]!);
    let entry = cache.get(hash);
    if (!entry) {
      let tenantId: string | null;
      try {
        tenantId = await lookup(hash);
      } catch {
        throw new KeygateError('KG_NOT_READY', 'token store unreachable');
      }
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
      entry = { tenantId, checkedAt: Date.now() };
      cache.set(hash, entry);
    } else if (Date.now() - entry.checkedAt >= ttlMs && !entry.refreshing) {
      const e = entry;
      // Unknown tokens are rechecked too, so a token created on another node starts working.
      e.refreshing = lookup(hash)
        .then((tenantId) => {
          e.tenantId = tenantId;
        })
        .catch(() => {})
        .finally(() => {
          e.checkedAt = Date.now();
          e.refreshing = undefined;
        });
      if (e.tenantId === null) await e.refreshing;
    }
    if (!entry.tenantId) throw new KeygateError('KG_UNAUTHENTICATED', 'unknown or revoked service token');
    return { tenantId: entry.tenantId };
  };
}
