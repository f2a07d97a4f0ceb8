/**
 * Partner keys for the hot path: the key, its policy and its live secrets (decrypted), cached in
 * memory for a short time and kept as last-known-good while the database or KMS is unreachable.
 * Admin changes (policy, rotate, retire, revoke) reach every node at once over the config-change
 * channel; the TTL bounds how stale a node can be if it missed that message.
 */
import type { Logger } from '../logger.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import { loadPartnerKeyForGateway, type PartnerKeyForGateway } from '../services/partner-keys.ts';
import type { Db } from '../storage/db.ts';
import { createLkgCache, type LkgCache } from './lkg-cache.ts';

export type { PartnerKeyForGateway };

export const DEFAULT_KEY_CACHE_TTL_MS = 5000;

export function createPartnerKeyCache(deps: {
  db: Db;
  secrets: SecretStore;
  ttlMs?: number;
  logger?: Pick<Logger, 'warn'>;
}): LkgCache<PartnerKeyForGateway> {
  return createLkgCache({
    load: (keyId) => loadPartnerKeyForGateway(deps, keyId),
    ttlMs: deps.ttlMs ?? DEFAULT_KEY_CACHE_TTL_MS,
    what: 'partner key',
    logger: deps.logger,
  });
}
