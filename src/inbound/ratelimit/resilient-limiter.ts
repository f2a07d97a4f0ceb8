/**
 * The Redis limiter with the behaviour DESIGN.md asks for when Redis is unreachable: each key's
 * `onRedisDown` decides between admitting (`fail-open`), refusing with 503 (`fail-closed`) and
 * deciding in process (`local`).
 */
import { isKeygateError, KeygateError } from '../../errors.ts';
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
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

export function createResilientRateLimiter(options: ResilientRateLimiterOptions): RateLimiter {
  const { redis, local, logger, timeoutMs = 200, retryRedisAfterMs = 1000, now = Date.now } = options;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
  if (!(retryRedisAfterMs >= 0))
    throw new RangeError(`retryRedisAfterMs must be >= 0, got ${retryRedisAfterMs}`);

  /** Set while Redis is considered down. */
  let outage: { since: number; lastFailureAt: number } | undefined;
  let probeInFlight = false;

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

      let probing = false;
      if (outage !== undefined) {
        if (probeInFlight || now() - outage.lastFailureAt < retryRedisAfterMs) {
          return decideWithoutRedis(keyId, policy, cost);
        }
        probeInFlight = true;
        probing = true;
      }
      try {
        const decision = await withTimeout(redis.decide(keyId, policy, cost), timeoutMs);
        if (outage !== undefined) {
          logger?.info({ downForMs: now() - outage.since }, 'rate limiter: Redis reachable again');
          outage = undefined;
        }
        return decision;
      } catch (err) {
        if (isKeygateError(err)) throw err;
        const failedAt = now();
        if (outage === undefined) {
          logger?.warn(
            { err: err instanceof Error ? err.message : String(err) },
            'rate limiter: Redis unreachable; keys fall back to their onRedisDown policy',
          );
        }
        outage = { since: outage?.since ?? failedAt, lastFailureAt: failedAt };
        return decideWithoutRedis(keyId, policy, cost);
      } finally {
        if (probing) probeInFlight = false;
      }
    },
  };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  // The command may still settle after we gave up on it; its rejection must not go unhandled.
  promise.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer in ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
