/** The shared limiter: one Lua script call per decision, so every gateway node draws on one quota. */
import type { Redis } from 'ioredis';
import { redisKeys } from '../../storage/redis-keys.ts';
import {
  GCRA_SCRIPT,
  GCRA_WITH_NONCE_SCRIPT,
  type LuaScript,
  TOKEN_BUCKET_SCRIPT,
  TOKEN_BUCKET_WITH_NONCE_SCRIPT,
} from './lua-scripts.ts';
import {
  deriveLimiterParameters,
  type LimiterOutcome,
  type LimiterParameters,
  STATE_EXPIRY_MARGIN_MS,
  toRateLimitDecision,
} from './model.ts';
import { type RateLimitDecision, type RateLimiter, type RateLimitPolicy, validateCost } from './policy.ts';

export interface RedisRateLimiter extends RateLimiter {
  /**
   * Claims the nonce for the key and, on its first use only, spends one request: one script, one
   * round trip. `'replayed'` when the nonce was used before; nothing is spent then.
   */
  claimNonceAndDecide(
    keyId: string,
    nonce: string,
    nonceTtlSeconds: number,
    policy: RateLimitPolicy,
  ): Promise<RateLimitDecision | 'replayed'>;
}

export interface RedisRateLimiterOptions {
  /**
   * Tests only: a microseconds clock sent to the script in place of Redis `TIME`, so a test can
   * replay a timeline. Production leaves it unset: nodes' clocks differ, Redis has one.
   */
  clockUs?: () => number;
}

export function createRedisRateLimiter(
  redis: Redis,
  options: RedisRateLimiterOptions = {},
): RedisRateLimiter {
  const { clockUs } = options;
  return {
    async decide(keyId, policy, cost = 1) {
      const params = deriveLimiterParameters(policy);
      validateCost(cost, policy);
      const now = clockUs ? String(clockUs()) : '';
      const key = redisKeys.rateLimitState(keyId, params.algorithm);
      const reply = await evalScript(
        redis,
        scriptFor(params),
        [key],
        [...scriptArguments(params, cost), now],
      );
      return toRateLimitDecision(params, parseOutcome(reply));
    },
    async claimNonceAndDecide(keyId, nonce, nonceTtlSeconds, policy) {
      const params = deriveLimiterParameters(policy);
      const ttl = Math.ceil(nonceTtlSeconds);
      if (!(ttl > 0)) throw new RangeError(`nonceTtlSeconds must be positive, got ${nonceTtlSeconds}`);
      const now = clockUs ? String(clockUs()) : '';
      const script =
        params.algorithm === 'token-bucket' ? TOKEN_BUCKET_WITH_NONCE_SCRIPT : GCRA_WITH_NONCE_SCRIPT;
      const keys = [redisKeys.rateLimitState(keyId, params.algorithm), redisKeys.nonce(keyId, nonce)];
      const reply = await evalScript(redis, script, keys, [...scriptArguments(params, 1), String(ttl), now]);
      if (Array.isArray(reply) && reply.length === 1 && reply[0] === -1) return 'replayed';
      return toRateLimitDecision(params, parseOutcome(reply));
    },
  };
}

function scriptFor(params: LimiterParameters): LuaScript {
  return params.algorithm === 'token-bucket' ? TOKEN_BUCKET_SCRIPT : GCRA_SCRIPT;
}

function scriptArguments(params: LimiterParameters, cost: number): string[] {
  const args =
    params.algorithm === 'token-bucket'
      ? [
          params.capacityUnits,
          params.unitsPerToken,
          params.refillUnitsPerMicrosecond,
          cost * params.unitsPerToken,
          STATE_EXPIRY_MARGIN_MS,
        ]
      : [params.emissionIntervalUs, params.toleranceUs, cost, STATE_EXPIRY_MARGIN_MS];
  return args.map(String);
}

/** EVALSHA, loading the script with EVAL the first time a Redis (or a restarted one) lacks it. */
async function evalScript(redis: Redis, script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha1, keys.length, ...keys, ...args);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
      return redis.eval(script.source, keys.length, ...keys, ...args);
    }
    throw err;
  }
}

function parseOutcome(reply: unknown): LimiterOutcome {
  if (!Array.isArray(reply) || reply.length !== 4 || !reply.every((n) => typeof n === 'number')) {
    throw new Error(`Unexpected rate-limit script reply: ${JSON.stringify(reply)}`);
  }
  const [allowed, remaining, resetUs, retryAfterUs] = reply as [number, number, number, number];
  return { allowed: allowed === 1, remaining, resetUs, retryAfterUs };
}
