/**
 * The in-process limiter: the embedded default, and the `local` fallback when Redis is down.
 * It runs the reference model itself, so its decisions are the Lua scripts' decisions.
 */
import { deriveLimiterParameters, type LimiterState, limiterStep, toRateLimitDecision } from './model.ts';
import { type RateLimiter, validateCost } from './policy.ts';

export interface MemoryRateLimiterOptions {
  /** Microseconds clock; the default reads the monotonic clock anchored at the process start. */
  clockUs?: () => number;
}

interface StoredState {
  state: LimiterState;
  expiresAtUs: number;
}

export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): RateLimiter {
  const { clockUs = monotonicClockUs } = options;
  // State expires the way Redis keys do (once the quota is whole again, plus a margin), so the map
  // holds only keys that are actually spending; insertion order approximates expiry order.
  const stateByKey = new Map<string, StoredState>();

  function sweepExpired(nowUs: number): void {
    for (const [key, stored] of stateByKey) {
      if (stored.expiresAtUs > nowUs) break;
      stateByKey.delete(key);
    }
  }

  return {
    async decide(keyId, policy, cost = 1) {
      const params = deriveLimiterParameters(policy);
      validateCost(cost, policy);
      const nowUs = clockUs();
      sweepExpired(nowUs);
      const key = `${params.algorithm}\n${keyId}`;
      const stored = stateByKey.get(key);
      const saved = stored && stored.expiresAtUs > nowUs ? stored.state : undefined;
      const step = limiterStep(params, saved, nowUs, cost);
      if (step.next) {
        stateByKey.delete(key);
        stateByKey.set(key, { state: step.next.state, expiresAtUs: nowUs + step.next.expireAfterMs * 1000 });
      }
      return toRateLimitDecision(params, step.outcome);
    },
  };
}

function monotonicClockUs(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}
