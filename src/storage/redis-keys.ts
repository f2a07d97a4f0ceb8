/**
 * The one place that knows keygate's Redis key layout. Every key carries a hash tag `{...}` so that
 * the keys one operation touches land on the same Redis Cluster slot.
 */
const PREFIX = 'kg';

export const redisKeys = {
  /** Cached upstream access token of a tenant's provider. */
  token: (tenantId: string, provider: string) => `${PREFIX}:{tok:${tenantId}:${provider}}:token`,
  /** Single-flight lock while one node fetches that token. */
  tokenLock: (tenantId: string, provider: string) => `${PREFIX}:{tok:${tenantId}:${provider}}:lock`,
  /** Channel announcing that the token was (re)fetched or dropped. */
  tokenChannel: (tenantId: string, provider: string) => `${PREFIX}:{tok:${tenantId}:${provider}}:events`,
  /** Every tokenChannel at once: each node holds one pattern subscription, not one per token. */
  tokenChannelPattern: () => `${PREFIX}:{tok:*}:events`,
  /** The error of the last failed token fetch, so waiters of that flight on other nodes get it too. */
  tokenError: (tenantId: string, provider: string) => `${PREFIX}:{tok:${tenantId}:${provider}}:error`,
  /** Inbound nonce seen for a partner key. */
  nonce: (keyId: string, nonce: string) => `${PREFIX}:{pk:${keyId}}:nonce:${nonce}`,
  /** Pub/sub channel for provider-config activations and rollbacks. */
  configChannel: () => `${PREFIX}:config-changes`,
  /**
   * Rate-limit state of a partner key under one algorithm. The two algorithms store different state,
   * so a key whose policy switches algorithm must not read the other's.
   */
  rateLimitState: (keyId: string, algorithm: string) => `${PREFIX}:{pk:${keyId}}:rl:${algorithm}`,
} as const;
