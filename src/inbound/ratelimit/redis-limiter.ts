/** The shared limiter: one Lua script call per decision, so every gateway node draws on one quota. */
import type { Redis } from 'ioredis';
import { redisKeys } from '../../storage/redis-keys.ts';
import { GCRA_SCRIPT, type LuaScript, TOKEN_BUCKET_SCRIPT } from './lua-scripts.ts';
import {
  deriveLimiterParameters,
  type LimiterOutcome,
  type LimiterParameters,
  STATE_EXPIRY_MARGIN_MS,
  toRateLimitDecision,
} from './model.ts';
import { type RateLimiter, validateCost } from './policy.ts';

export interface RedisRateLimiterOptions {
  /**
   * Tests only: a microseconds clock sent to the script in place of Redis `TIME`, so a test can
   * replay a timeline. Production leaves it unset: nodes' clocks differ, Redis has one.
   */
  clockUs?: () => number;
}

export function createRedisRateLimiter(redis: Redis, options: RedisRateLimiterOptions = {}): RateLimiter {
  const { clockUs } = options;
  return {
    async decide(keyId, policy, cost = 1) {
      const params = deriveLimiterParameters(policy);
      validateCost(cost, policy);
      const now = clockUs ? String(clockUs()) : '';
      const key = redisKeys.rateLimitState(keyId, params.algorithm);
      const reply = await evalScript(redis, scriptFor(params), key, [...scriptArguments(params, cost), now]);
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
async function evalScript(redis: Redis, script: LuaScript, key: string, args: string[]): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha1, 1, key, ...args);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
      return redis.eval(script.source, 1, key, ...args);
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
