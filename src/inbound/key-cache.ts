/**
 * Partner keys for the hot path: the key, its policy and its live secrets (decrypted), cached in
 * memory for a short time and kept as last-known-good while the database or KMS is unreachable.
 * Admin changes (policy, rotate, retire, revoke) reach every node at once over the config-change
 * channel; the TTL bounds how stale a node can be if it missed that message.
 *
 * A live secret that will never decrypt as stored (its wrapped data key refused, its ciphertext
 * altered) is left out of the key by the loader, and reported here: one error line when it is
 * found, not on every load, and a count per tenant for the metrics.
 *
 * The partner never hears of it. The pipeline verifies against the secrets that decrypted, so a
 * request signed with the one left out, and every request with a key none of whose secrets
 * decrypts, gets the 401 KG_SIGNATURE_MISMATCH any wrong signature gets, not 500
 * KG_SECRET_UNREADABLE. That answer comes before the caller is authenticated, and anyone can
 * send a key id: a 500 would tell them which keys are broken in storage (and that their tampering
 * with a row took), where a 401 tells them nothing a wrong signature does not. The partner could
 * not repair keygate's storage either way; the operator can, from the log line and the metric.
 * A KMS or database that could not answer is not this: the load fails, and the cache serves the
 * last-known-good copy, or 503.
 */
import type { SecretStore } from '../secrets/secret-store.ts';
import {
  loadPartnerKeyForGateway,
  type PartnerKeyForGateway,
  type UnreadablePartnerSecret,
} from '../services/partner-keys.ts';
import type { Db } from '../storage/db.ts';
import { createLkgCache, type LkgCache } from './lkg-cache.ts';

export type { PartnerKeyForGateway };

export const DEFAULT_KEY_CACHE_TTL_MS = 5000;

export interface PartnerKeyCache extends LkgCache<PartnerKeyForGateway> {
  /**
   * Per tenant with any, over the keys this node's cache holds, as of each key's latest load: how
   * many live secrets do not decrypt, and how many keys have no live secret that does (every call
   * with them is refused).
   */
  unreadableCounts(): Array<{ tenantId: string; secrets: number; keysWithoutReadableSecret: number }>;
}

interface Reported {
  tenantId: string;
  /** The unreadable versions already logged: version -> fingerprint of the stored row. */
  versions: Map<number, string>;
  /** No live secret of the key decrypts. */
  noneReadable: boolean;
}

export function createPartnerKeyCache(deps: {
  db: Db;
  secrets: SecretStore;
  ttlMs?: number;
  /** Bound on the keys cached (the cache's default, 50,000, without it). */
  maxEntries?: number;
  logger?: { warn(details: object, message: string): void; error(details: object, message: string): void };
}): PartnerKeyCache {
  // By key id: only keys in the cache whose latest load found a secret unreadable. A key the cache
  // evicts leaves it too, so the counts cover only keys this node holds and the map stays within
  // the cache's bound; if the key is loaded again, its unreadable secrets are news again (logged).
  const reported = new Map<string, Reported>();

  /**
   * Logs the secrets of this load that were not already: every load finds them again (every TTL
   * while the key is in use), and one line each time one went bad is what an operator can act on.
   * A row altered anew, or readable (or retired) in between, is logged again. The line names
   * tenant, key and version and says which part failed; never bytes of the secret or its row.
   */
  const report = (keyId: string, key: PartnerKeyForGateway | undefined) => {
    const found: UnreadablePartnerSecret[] = key?.unreadableSecrets ?? [];
    const before = reported.get(keyId)?.versions;
    const news = found.filter((s) => before?.get(s.version) !== s.fingerprint);
    if (!key || found.length === 0) {
      reported.delete(keyId);
      return;
    }
    reported.set(keyId, {
      tenantId: key.tenantId,
      versions: new Map(found.map((s) => [s.version, s.fingerprint])),
      noneReadable: key.secrets.length === 0,
    });
    if (news.length === 0) return;
    const readable = key.secrets.map((s) => s.version);
    // The exact commands: retire-secret without --version retires the oldest live secret, which
    // may be the one that still verifies.
    const retire = news
      .map(
        (s) => `keygate partner-key retire-secret --tenant ${key.tenantId} ${keyId} --version ${s.version}`,
      )
      .join('; ');
    const rotate = `keygate partner-key rotate --tenant ${key.tenantId} ${keyId}`;
    deps.logger?.error(
      {
        tenantId: key.tenantId,
        keyId,
        unreadableSecretVersions: news.map((s) => s.version),
        causes: Object.fromEntries(news.map((s) => [s.version, s.cause])),
        readableSecretVersions: readable,
        reason:
          readable.length > 0
            ? `requests signed with them are refused with 401 KG_SIGNATURE_MISMATCH; secret version ${readable.join(', ')} verifies. Retire them with: ${retire} (then \`${rotate}\` hands out a new second secret)`
            : `no live secret of this key decrypts: every request with it is refused with 401 KG_SIGNATURE_MISMATCH. Give the partner a new secret with \`${rotate}\` (retire one of them first if the key has two), then: ${retire}`,
      },
      'partner key secrets cannot be decrypted',
    );
  };

  const cache = createLkgCache({
    load: (keyId) => loadPartnerKeyForGateway(deps, keyId),
    ttlMs: deps.ttlMs ?? DEFAULT_KEY_CACHE_TTL_MS,
    maxEntries: deps.maxEntries,
    what: 'partner key',
    logger: deps.logger,
    onStore: report,
    onEvict: (keyId) => reported.delete(keyId),
  });
  return {
    ...cache,
    unreadableCounts() {
      const byTenant = new Map<
        string,
        { tenantId: string; secrets: number; keysWithoutReadableSecret: number }
      >();
      for (const { tenantId, versions, noneReadable } of reported.values()) {
        const counts = byTenant.get(tenantId) ?? { tenantId, secrets: 0, keysWithoutReadableSecret: 0 };
        counts.secrets += versions.size;
        if (noneReadable) counts.keysWithoutReadableSecret++;
        byTenant.set(tenantId, counts);
      }
      return [...byTenant.values()];
    },
  };
}
