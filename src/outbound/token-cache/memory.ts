/** The embedded token cache: a Map and one in-flight fetch per key, for a single process. */
import { DEFAULT_SKEW_MS, isFresh, type StoredToken, toCachedToken, toStoredToken } from './expire-time.ts';
import type { CachedToken, FetchedToken, TokenCache } from './index.ts';
import { singleFlight } from './single-flight.ts';

export interface MemoryTokenCacheOptions {
  now?: () => number;
  /** Refresh this long before expiry (or 10% of the lifetime when shorter). */
  skewMs?: number;
}

export function createMemoryTokenCache(options: MemoryTokenCacheOptions = {}): TokenCache {
  const { now = Date.now, skewMs = DEFAULT_SKEW_MS } = options;
  if (!(skewMs >= 0)) throw new RangeError('skewMs must be >= 0');
  const tokens = new Map<string, StoredToken>();
  const inflight = new Map<string, Promise<CachedToken>>();

  function readFresh(key: string): CachedToken | null {
    const entry = tokens.get(key);
    if (!entry) return null;
    if (isFresh(entry, now())) return toCachedToken(entry);
    tokens.delete(key);
    return null;
  }

  return {
    async get(tenantId, provider) {
      return readFresh(cacheKey(tenantId, provider));
    },

    async set(tenantId, provider, token, expireTime) {
      tokens.set(cacheKey(tenantId, provider), toStoredToken(token, expireTime, now(), skewMs));
    },

    async delete(tenantId, provider, onlyToken) {
      const key = cacheKey(tenantId, provider);
      if (onlyToken === undefined || tokens.get(key)?.token === onlyToken) tokens.delete(key);
    },

    async getOrFetch(tenantId, provider, fetch: () => Promise<FetchedToken>) {
      const key = cacheKey(tenantId, provider);
      const cached = readFresh(key);
      if (cached) return cached;
      return singleFlight(inflight, key, async () => {
        const fetched = await fetch();
        const entry = toStoredToken(fetched?.token, fetched?.expireTime, now(), skewMs);
        tokens.set(key, entry);
        return toCachedToken(entry);
      });
    },

    async close() {
      tokens.clear();
    },
  };
}

function cacheKey(tenantId: string, provider: string): string {
  return JSON.stringify([tenantId, provider]);
}
