/**
 * The upstream access-token cache, per tenant + provider: the store behind `token` mode and the
 * `token_load` / `token_save` / `token_delete` script built-ins. Redis when REDIS_URL is set
 * (shared by every node, one fetch at a time cluster-wide), in-process otherwise.
 */

export interface CachedToken {
  token: string;
  /** Epoch ms; null = the token came without an expiry. */
  expiresAtMs: number | null;
}

export interface FetchedToken {
  token: string;
  /** Epoch seconds, epoch milliseconds or ISO-8601 (see parseExpireTime); null = no expiry. */
  expireTime: unknown;
}

export interface TokenCache {
  /** The cached token, or null when there is none or it is within its refresh skew of expiring. */
  get(tenantId: string, provider: string): Promise<CachedToken | null>;
  /** Caches a token; throws when expireTime is garbage or not in the future. */
  set(tenantId: string, provider: string, token: string, expireTime: unknown): Promise<void>;
  /**
   * Drops the cached token, on every node. With `onlyToken`, only if the cached token is still that
   * one: a node answering a 401 for an old token then cannot drop the new token another node just
   * fetched.
   */
  delete(tenantId: string, provider: string, onlyToken?: string): Promise<void>;
  /**
   * The cached token, or one fresh from `fetch`. Single flight: while there is no valid token, one
   * caller (cluster-wide with Redis) runs fetch and every other caller gets its result, or its
   * error; the next call after an error fetches again.
   */
  getOrFetch(tenantId: string, provider: string, fetch: () => Promise<FetchedToken>): Promise<CachedToken>;
  close(): Promise<void>;
}

export { DEFAULT_SKEW_MS, parseExpireTime } from './expire-time.ts';
export { createMemoryTokenCache, type MemoryTokenCacheOptions } from './memory.ts';
export { createRedisTokenCache, type RedisTokenCacheOptions } from './redis.ts';
