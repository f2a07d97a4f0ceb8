/**
 * Replay protection: a nonce may be used once per partner key while its timestamp could still be
 * accepted. Redis when nodes share state, an in-process map for the embedded default.
 */
import type { Redis } from 'ioredis';
import { KeygateError } from '../../errors.ts';
import { redisKeys } from '../../storage/redis-keys.ts';

export interface NonceStore {
  /** Records the nonce for the key; true if this is its first use, false if it was seen before. */
  claim(keyId: string, nonce: string, ttlSeconds: number): Promise<boolean>;
}

/**
 * How long a nonce must be remembered: a timestamp is accepted from `window` seconds before the
 * gateway clock to `window` seconds after it, so the same request stays acceptable for up to twice
 * the window; the extra `window` also covers clock skew between gateway nodes.
 */
export function nonceTtlSeconds(timestampWindowSeconds: number): number {
  return 2 * timestampWindowSeconds;
}

export function createRedisNonceStore(redis: Redis): NonceStore {
  return {
    async claim(keyId, nonce, ttlSeconds) {
      const reply = await redis.set(redisKeys.nonce(keyId, nonce), '1', 'EX', wholeSeconds(ttlSeconds), 'NX');
      return reply === 'OK';
    },
  };
}

export interface MemoryNonceStoreOptions {
  /** Upper bound on remembered nonces; beyond it new claims fail rather than forget a live nonce. */
  maxEntries?: number;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

/**
 * In-process nonce store. Entries expire after their TTL and are swept as new claims arrive. When
 * `maxEntries` live nonces are held, a claim throws KG_NOT_READY (503) instead of evicting one:
 * evicting a nonce that is still inside its window would let that request be replayed.
 */
export function createMemoryNonceStore(options: MemoryNonceStoreOptions = {}): NonceStore {
  const { maxEntries = 250_000, now = Date.now } = options;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
  }
  // Map keeps insertion order; with the usual constant TTL that is also expiry order, so expired
  // entries are found at the front.
  const expiresAtByNonce = new Map<string, number>();

  /** Drops expired entries from the front; `everywhere` also looks past a longer-lived entry. */
  function sweepExpired(at: number, everywhere: boolean): void {
    for (const [entry, expiresAt] of expiresAtByNonce) {
      if (expiresAt <= at) expiresAtByNonce.delete(entry);
      else if (!everywhere) break;
    }
  }

  return {
    async claim(keyId, nonce, ttlSeconds) {
      const at = now();
      sweepExpired(at, false);
      const entry = `${keyId}\n${nonce}`;
      const expiresAt = expiresAtByNonce.get(entry);
      if (expiresAt !== undefined && expiresAt > at) return false;
      if (expiresAt === undefined && expiresAtByNonce.size >= maxEntries) sweepExpired(at, true);
      if (expiresAt === undefined && expiresAtByNonce.size >= maxEntries) {
        throw new KeygateError('KG_NOT_READY', 'The in-process nonce store is full; retry shortly');
      }
      // Re-inserting moves the entry to the back, keeping the map in expiry order.
      expiresAtByNonce.delete(entry);
      expiresAtByNonce.set(entry, at + wholeSeconds(ttlSeconds) * 1000);
      return true;
    },
  };
}

function wholeSeconds(ttlSeconds: number): number {
  if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) {
    throw new RangeError(`ttlSeconds must be a positive number, got ${ttlSeconds}`);
  }
  return Math.ceil(ttlSeconds);
}
