/**
 * The shared limiter: every decision is made by a Lua script in Redis, so every gateway node draws
 * on one quota. A plain decision is one script call. The nonce claims and spends of verified
 * inbound calls are gathered per event-loop turn and sent as one script call per partner key (see
 * the CLAIMS scripts): under load many calls to one key share a call, so Redis runs one script and
 * reads and writes the key's state once for all of them, and the client sends one command.
 */
import type { Redis } from 'ioredis';
import { redisKeys } from '../../storage/redis-keys.ts';
import {
  GCRA_CLAIMS_SCRIPT,
  GCRA_SCRIPT,
  type LuaScript,
  TOKEN_BUCKET_CLAIMS_SCRIPT,
  TOKEN_BUCKET_SCRIPT,
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
   * round trip, shared with the other claims on the key made in the same event-loop turn (they are
   * sent when it ends). `'replayed'` when the nonce was used before; nothing is spent then.
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

/** Claims on one key (and policy, and test clock) waiting for the end of the turn. */
interface ClaimGroup {
  params: LimiterParameters;
  stateKey: string;
  args: string[];
  claims: Array<{
    nonceKey: string;
    resolve: (decision: RateLimitDecision | 'replayed') => void;
    reject: (err: unknown) => void;
  }>;
}

/** The most claims one script run decides; more in one turn go in further runs. */
const MAX_CLAIMS_PER_CALL = 256;

export function createRedisRateLimiter(
  redis: Redis,
  options: RedisRateLimiterOptions = {},
): RedisRateLimiter {
  const { clockUs } = options;
  let waiting = new Map<string, ClaimGroup>();
  let sendScheduled = false;

  function sendWaiting(): void {
    sendScheduled = false;
    const groups = waiting;
    waiting = new Map();
    for (const group of groups.values()) void sendClaims(group);
  }

  async function sendClaims(group: ClaimGroup): Promise<void> {
    const { params, claims } = group;
    const script = params.algorithm === 'token-bucket' ? TOKEN_BUCKET_CLAIMS_SCRIPT : GCRA_CLAIMS_SCRIPT;
    try {
      const keys = [group.stateKey];
      for (const claim of claims) keys.push(claim.nonceKey);
      const outcomes = parseClaimOutcomes(await evalScript(redis, script, keys, group.args), claims.length);
      for (const [i, claim] of claims.entries()) {
        const outcome = outcomes[i]!;
        claim.resolve(outcome === 'replayed' ? 'replayed' : toRateLimitDecision(params, outcome));
      }
    } catch (err) {
      for (const claim of claims) claim.reject(err);
    }
  }

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
      const stateKey = redisKeys.rateLimitState(keyId, params.algorithm);
      const args = [...scriptArguments(params, 1), String(ttl), now];
      // Calls group only when the script would see the same arguments: the same key and policy.
      const groupKey = `${stateKey} ${args.join(' ')}`;
      return new Promise((resolve, reject) => {
        let group = waiting.get(groupKey);
        if (group === undefined) {
          group = { params, stateKey, args, claims: [] };
          waiting.set(groupKey, group);
        }
        group.claims.push({ nonceKey: redisKeys.nonce(keyId, nonce), resolve, reject });
        if (group.claims.length >= MAX_CLAIMS_PER_CALL) {
          waiting.delete(groupKey);
          void sendClaims(group);
        } else if (!sendScheduled) {
          sendScheduled = true;
          setImmediate(sendWaiting);
        }
      });
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

/**
 * The CLAIMS scripts' reply: four numbers per claim, each four read as parseOutcome reads one
 * decision, except that -1 first is a replayed nonce.
 */
function parseClaimOutcomes(reply: unknown, count: number): Array<LimiterOutcome | 'replayed'> {
  if (!Array.isArray(reply) || reply.length !== 4 * count) {
    throw new Error(`Unexpected rate-limit script reply: ${JSON.stringify(reply).slice(0, 200)}`);
  }
  const outcomes: Array<LimiterOutcome | 'replayed'> = [];
  for (let i = 0; i < reply.length; i += 4) {
    outcomes.push(reply[i] === -1 ? 'replayed' : parseOutcome(reply.slice(i, i + 4)));
  }
  return outcomes;
}
