/**
 * The Redis limiter with the behaviour DESIGN.md asks for when Redis is unreachable: each key's
 * `onRedisDown` decides between admitting (`fail-open`), refusing with 503 (`fail-closed`) and
 * deciding in process (`local`).
 */
import { KeygateError } from '../../errors.ts';
import { createRedisOutageGuard, type RedisOutageGuard } from '../../storage/redis-outage.ts';
import { deriveLimiterParameters } from './model.ts';
import { type RateLimitDecision, type RateLimiter, type RateLimitPolicy, validateCost } from './policy.ts';

/** The slice of the pino logger this needs. */
export interface RateLimiterLogger {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}

export interface ResilientRateLimiterOptions {
  redis: RateLimiter;
  local: RateLimiter;
  logger?: RateLimiterLogger;
  /**
   * How long a decision may wait for Redis. A dead or partitioned Redis otherwise holds requests
   * for as long as the client keeps retrying (ioredis queues commands while it reconnects).
   */
  timeoutMs?: number;
  /**
   * After a failure, Redis is left alone this long and then probed by one request, so that during
   * an outage requests do not each wait `timeoutMs` first.
   */
  retryRedisAfterMs?: number;
  /**
   * The outage rule to follow, when other users of the same Redis connection share it; otherwise
   * one is made from `timeoutMs` and `retryRedisAfterMs`.
   */
  outage?: RedisOutageGuard;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

export function createResilientRateLimiter(options: ResilientRateLimiterOptions): RateLimiter {
  const { redis, local, logger, timeoutMs = 200, retryRedisAfterMs = 1000, now = Date.now } = options;
  const guard =
    options.outage ??
    createRedisOutageGuard({
      what: 'rate limiter',
      whileDown: 'keys fall back to their onRedisDown policy',
      timeoutMs,
      retryAfterMs: retryRedisAfterMs,
      logger,
      now,
    });

  async function decideWithoutRedis(keyId: string, policy: RateLimitPolicy, cost: number) {
    switch (policy.onRedisDown) {
      case 'fail-open': {
        const { limit, windowSeconds } = deriveLimiterParameters(policy);
        // Nothing is known about the key's spending; report the quota as untouched.
        return {
          allowed: true,
          limit,
          windowSeconds,
          remaining: limit,
          resetSeconds: 0,
          fallback: 'fail-open',
        } as const;
      }
      case 'fail-closed':
        throw new KeygateError('KG_RATE_LIMITER_UNAVAILABLE', 'The rate limiter cannot reach Redis');
      case 'local':
        return { ...(await local.decide(keyId, policy, cost)), fallback: 'local' } as const;
    }
  }

  return {
    async decide(keyId, policy, cost = 1): Promise<RateLimitDecision> {
      // Bad input must surface as itself, not be mistaken for an outage below.
      deriveLimiterParameters(policy);
      validateCost(cost, policy);

      return guard.call(
        () => redis.decide(keyId, policy, cost),
        () => decideWithoutRedis(keyId, policy, cost),
      );
    },
  };
}
