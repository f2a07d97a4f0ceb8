/**
 * Replay protection on the hot path: the shared Redis nonce store, with the in-process store
 * standing in while Redis is unreachable (the key's rate-limit policy then decides whether the
 * request goes on; `fail-closed` keys are refused by the limiter right after). During an outage a
 * nonce is only known to the node that saw it; for one nonce lifetime after Redis returns, nonces
 * are checked against that node's memory too, so a request admitted during the outage cannot be
 * replayed through Redis afterwards.
 */
import { createRedisOutageGuard, type RedisOutageGuard } from '../storage/redis-outage.ts';
import type { NonceStore } from './nonce/nonce-store.ts';

export interface ReplayGuard {
  /** True on a nonce's first use for the key, false for a replay. */
  claim(keyId: string, nonce: string): Promise<boolean>;
  /**
   * True while Redis alone decides a claim (no in-process store to consult after an outage), so a
   * caller may fold the claim into another Redis script.
   */
  decidedByRedisAlone(): boolean;
}

export interface ReplayGuardOptions {
  /** The shared store; without one, `local` is the store. */
  redis?: NonceStore;
  local: NonceStore;
  ttlSeconds: number;
  /** How long a claim may wait for Redis before the local store answers. */
  timeoutMs?: number;
  /** After a failure Redis is left alone this long, then probed by one request. */
  retryRedisAfterMs?: number;
  /**
   * The outage rule to follow, when other users of the same Redis connection share it; otherwise
   * one is made from `timeoutMs` and `retryRedisAfterMs`.
   */
  outage?: RedisOutageGuard;
  logger?: { warn(details: object, message: string): void; info(details: object, message: string): void };
  now?: () => number;
}

export function createReplayGuard({
  redis,
  local,
  ttlSeconds,
  timeoutMs = 200,
  retryRedisAfterMs = 1000,
  outage,
  logger,
  now = Date.now,
}: ReplayGuardOptions): ReplayGuard {
  if (!redis) {
    return {
      claim: (keyId, nonce) => local.claim(keyId, nonce, ttlSeconds),
      decidedByRedisAlone: () => false,
    };
  }
  const shared = redis;
  const guard =
    outage ??
    createRedisOutageGuard({
      what: 'nonce store',
      whileDown: 'nonces are checked in process until it is back',
      timeoutMs,
      retryAfterMs: retryRedisAfterMs,
      logger,
      now,
    });
  /** Until then, nonces claimed locally during an outage may still come back. */
  let checkLocalUntil = 0;

  const claimLocally = (keyId: string, nonce: string) => {
    checkLocalUntil = now() + ttlSeconds * 1000;
    return local.claim(keyId, nonce, ttlSeconds);
  };

  return {
    claim: (keyId, nonce) =>
      guard.call(
        async () => {
          const first = await shared.claim(keyId, nonce, ttlSeconds);
          if (first && now() < checkLocalUntil) {
            // A full local store must not refuse requests once Redis is back: Redis has the nonce now.
            return local.claim(keyId, nonce, ttlSeconds).catch(() => true);
          }
          return first;
        },
        () => claimLocally(keyId, nonce),
      ),
    decidedByRedisAlone: () => now() >= checkLocalUntil,
  };
}
