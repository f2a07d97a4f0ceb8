/** What a partner key's rate limit is, what a decision says, and who makes decisions. */
import { KeygateError } from '../../errors.ts';

export const RATE_LIMIT_ALGORITHMS = ['token-bucket', 'gcra'] as const;
export const ON_REDIS_DOWN_BEHAVIOURS = ['fail-open', 'fail-closed', 'local'] as const;

export type RateLimitAlgorithm = (typeof RATE_LIMIT_ALGORITHMS)[number];
export type OnRedisDown = (typeof ON_REDIS_DOWN_BEHAVIOURS)[number];

/**
 * `rate` requests per `periodSeconds`, with up to `burst` at once.
 * token-bucket: capacity `burst`, refilled at `rate / periodSeconds` tokens a second.
 * gcra: one request every `periodSeconds / rate` (rounded up to a whole microsecond), `burst` ahead.
 */
export interface RateLimitPolicy {
  algorithm: RateLimitAlgorithm;
  rate: number;
  periodSeconds: number;
  burst: number;
  onRedisDown: OnRedisDown;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** The quota `q` of RateLimit-Policy: the burst, the most a key can spend at once. */
  limit: number;
  /** The window `w` of RateLimit-Policy: seconds to earn the whole quota back from empty. */
  windowSeconds: number;
  /** Requests that could still be admitted right now. */
  remaining: number;
  /** Seconds until the quota is whole again. */
  resetSeconds: number;
  /** Present when denied: seconds until this request would be admitted. */
  retryAfterSeconds?: number;
  /** Set when Redis could not be asked and the key's `onRedisDown` decided instead. */
  fallback?: 'fail-open' | 'local';
}

export interface RateLimiter {
  /** Spends `cost` (default 1) from the key's quota if it is there. */
  decide(keyId: string, policy: RateLimitPolicy, cost?: number): Promise<RateLimitDecision>;
}

/**
 * Largest `burst * periodSeconds`: the limiters count in microseconds with integers held in
 * doubles (Lua has no other number), and this keeps every intermediate value below 2^52, where
 * integer arithmetic and division in doubles are still exact.
 */
export const MAX_BURST_TIMES_PERIOD = 1_000_000_000;

/** Throws KG_VALIDATION_FAILED listing every problem; for the CLI and admin API as much as the limiters. */
export function validateRateLimitPolicy(policy: RateLimitPolicy): void {
  const errors: string[] = [];
  const positiveInteger = (field: 'rate' | 'periodSeconds' | 'burst') => {
    const value = policy[field];
    if (!Number.isSafeInteger(value) || value < 1) errors.push(`${field} must be a positive integer`);
  };
  if (!RATE_LIMIT_ALGORITHMS.includes(policy.algorithm)) {
    errors.push(`algorithm must be one of ${RATE_LIMIT_ALGORITHMS.join(', ')}`);
  }
  if (!ON_REDIS_DOWN_BEHAVIOURS.includes(policy.onRedisDown)) {
    errors.push(`onRedisDown must be one of ${ON_REDIS_DOWN_BEHAVIOURS.join(', ')}`);
  }
  positiveInteger('rate');
  positiveInteger('periodSeconds');
  positiveInteger('burst');
  if (errors.length === 0) {
    if (policy.burst * policy.periodSeconds > MAX_BURST_TIMES_PERIOD) {
      errors.push(`burst * periodSeconds must be at most ${MAX_BURST_TIMES_PERIOD}`);
    }
    if (policy.rate > policy.periodSeconds * 1_000_000) {
      errors.push('rate must be at most one request per microsecond');
    }
  }
  if (errors.length > 0) {
    throw new KeygateError('KG_VALIDATION_FAILED', `Invalid rate-limit policy: ${errors.join('; ')}`, {
      errors,
    });
  }
}

/** A cost is a whole number of requests no larger than the burst (a larger one could never pass). */
export function validateCost(cost: number, policy: RateLimitPolicy): void {
  if (!Number.isSafeInteger(cost) || cost < 0 || cost > policy.burst) {
    throw new RangeError(`cost must be an integer from 0 to the burst (${policy.burst}), got ${cost}`);
  }
}
