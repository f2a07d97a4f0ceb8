/**
 * The replay check and the quota spend of a verified call, in that order: a replayed nonce spends
 * nothing. With Redis both are one script call, so one round trip (the nonce and the limiter state
 * share the `{pk:ID}` hash tag, so one Cluster slot). While Redis is down, and for one nonce
 * lifetime after an outage (when the nonces this node saw meanwhile must be consulted too), the
 * replay guard and the limiter run one after the other, each with its outage fallback.
 */
import type { RedisOutageGuard } from '../storage/redis-outage.ts';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from './ratelimit/index.ts';
import { deriveLimiterParameters } from './ratelimit/model.ts';
import type { RedisRateLimiter } from './ratelimit/redis-limiter.ts';
import type { ReplayGuard } from './replay-guard.ts';

export interface Admission {
  /** `'replayed'` for a nonce used before with the key (nothing spent), else the rate-limit decision. */
  admit(keyId: string, nonce: string, policy: RateLimitPolicy): Promise<RateLimitDecision | 'replayed'>;
}

export interface AdmissionOptions {
  replay: ReplayGuard;
  limiter: RateLimiter;
  /** The one-script path. `outage` must be the guard `replay` and `limiter` follow too. */
  redis?: { limiter: RedisRateLimiter; outage: RedisOutageGuard; nonceTtlSeconds: number };
}

export function createAdmission({ replay, limiter, redis }: AdmissionOptions): Admission {
  async function oneAfterTheOther(keyId: string, nonce: string, policy: RateLimitPolicy) {
    if (!(await replay.claim(keyId, nonce))) return 'replayed' as const;
    return limiter.decide(keyId, policy);
  }
  if (!redis) return { admit: oneAfterTheOther };
  const { limiter: shared, outage, nonceTtlSeconds } = redis;
  if (!(nonceTtlSeconds > 0))
    throw new RangeError(`nonceTtlSeconds must be positive, got ${nonceTtlSeconds}`);

  return {
    admit(keyId, nonce, policy) {
      if (!replay.decidedByRedisAlone()) return oneAfterTheOther(keyId, nonce, policy);
      // A bad policy must surface as itself, not be mistaken for an outage below.
      deriveLimiterParameters(policy);
      // On failure the fallback finds the shared guard already in outage: both steps go local at once.
      return outage.call(
        () => shared.claimNonceAndDecide(keyId, nonce, nonceTtlSeconds, policy),
        () => oneAfterTheOther(keyId, nonce, policy),
      );
    },
  };
}
