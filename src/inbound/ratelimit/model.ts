/**
 * The reference model of both algorithms: pure functions of (parameters, state, time, cost).
 * The in-process limiter runs these functions; the Lua scripts in `lua-scripts.ts` are line-by-line
 * transcriptions of them, and the property test checks that all three agree on every request.
 *
 * Everything is an integer count of microseconds (time) or of token units (token bucket), held in
 * doubles because Lua has no other number; `MAX_BURST_TIMES_PERIOD` keeps every value below 2^52,
 * so sums, products and floor/ceil of quotients are exact and identical in Lua and JavaScript.
 */
import {
  type RateLimitDecision,
  type RateLimitPolicy,
  validateCost,
  validateRateLimitPolicy,
} from './policy.ts';

const MICROS_PER_SECOND = 1_000_000;

/**
 * Stored state outlives the moment the quota is whole again by this much. Expiring earlier would
 * be harmless in theory (a whole quota is what a missing key means) but the margin absorbs clock
 * steps between the time the TTL was computed and Redis applies it.
 */
export const STATE_EXPIRY_MARGIN_MS = 10_000;

export interface TokenBucketParameters {
  algorithm: 'token-bucket';
  /** One token is `periodSeconds` * 10^6 units, so a refill of `rate` units per microsecond is exact. */
  unitsPerToken: number;
  capacityUnits: number;
  refillUnitsPerMicrosecond: number;
  limit: number;
  windowSeconds: number;
}

export interface GcraParameters {
  algorithm: 'gcra';
  emissionIntervalUs: number;
  /** How far ahead of the clock the theoretical arrival time may run: `burst` intervals. */
  toleranceUs: number;
  limit: number;
  windowSeconds: number;
}

export type LimiterParameters = TokenBucketParameters | GcraParameters;

export interface TokenBucketState {
  tokensUnits: number;
  updatedAtUs: number;
  /** The unit the tokens were counted in; a period change makes old state meaningless. */
  unitsPerToken: number;
}

export interface GcraState {
  theoreticalArrivalUs: number;
}

export type LimiterState = TokenBucketState | GcraState;

/** One decision in integer microseconds, as the Lua scripts return it. */
export interface LimiterOutcome {
  allowed: boolean;
  remaining: number;
  resetUs: number;
  /** -1 when allowed. */
  retryAfterUs: number;
}

export interface LimiterStep<State> {
  outcome: LimiterOutcome;
  /** The state to store, present only when it changed (a denial changes nothing). */
  next?: { state: State; expireAfterMs: number };
}

/** Validates the policy and computes the integers both the model and the Lua scripts work with. */
export function deriveLimiterParameters(policy: RateLimitPolicy): LimiterParameters {
  validateRateLimitPolicy(policy);
  const periodUs = policy.periodSeconds * MICROS_PER_SECOND;
  if (policy.algorithm === 'token-bucket') {
    return {
      algorithm: 'token-bucket',
      unitsPerToken: periodUs,
      capacityUnits: policy.burst * periodUs,
      refillUnitsPerMicrosecond: policy.rate,
      limit: policy.burst,
      windowSeconds: Math.ceil((policy.burst * policy.periodSeconds) / policy.rate),
    };
  }
  const emissionIntervalUs = Math.ceil(periodUs / policy.rate);
  const toleranceUs = policy.burst * emissionIntervalUs;
  return {
    algorithm: 'gcra',
    emissionIntervalUs,
    toleranceUs,
    limit: policy.burst,
    windowSeconds: Math.ceil(toleranceUs / MICROS_PER_SECOND),
  };
}

export function tokenBucketStep(
  params: TokenBucketParameters,
  saved: TokenBucketState | undefined,
  nowUs: number,
  cost: number,
): LimiterStep<TokenBucketState> {
  const { capacityUnits: capacity, unitsPerToken: unit, refillUnitsPerMicrosecond: refill } = params;
  const costUnits = cost * unit;
  let tokens = capacity;
  let updatedAt = nowUs;
  if (saved !== undefined && saved.unitsPerToken === unit) {
    tokens = saved.tokensUnits;
    updatedAt = saved.updatedAtUs;
  }
  if (tokens > capacity) tokens = capacity;
  // A clock that stepped back must not refill twice: time stands still until it catches up.
  const now = Math.max(nowUs, updatedAt);
  const elapsed = now - updatedAt;
  if (elapsed > 0) {
    // Compared through the quotient so that elapsed * refill never grows past capacity + refill.
    if (elapsed >= Math.ceil((capacity - tokens) / refill)) tokens = capacity;
    else tokens = tokens + elapsed * refill;
  }
  if (tokens < costUnits) {
    return {
      outcome: {
        allowed: false,
        remaining: Math.floor(tokens / unit),
        resetUs: Math.ceil((capacity - tokens) / refill),
        retryAfterUs: Math.ceil((costUnits - tokens) / refill),
      },
    };
  }
  tokens = tokens - costUnits;
  const resetUs = Math.ceil((capacity - tokens) / refill);
  return {
    outcome: { allowed: true, remaining: Math.floor(tokens / unit), resetUs, retryAfterUs: -1 },
    next: {
      state: { tokensUnits: tokens, updatedAtUs: now, unitsPerToken: unit },
      expireAfterMs: Math.ceil(resetUs / 1000) + STATE_EXPIRY_MARGIN_MS,
    },
  };
}

export function gcraStep(
  params: GcraParameters,
  saved: GcraState | undefined,
  nowUs: number,
  cost: number,
): LimiterStep<GcraState> {
  const { emissionIntervalUs: interval, toleranceUs: tolerance } = params;
  let arrival = saved?.theoreticalArrivalUs ?? nowUs;
  if (arrival < nowUs) arrival = nowUs;
  const nextArrival = arrival + cost * interval;
  const allowAt = nextArrival - tolerance;
  if (nowUs < allowAt) {
    return {
      outcome: {
        allowed: false,
        remaining: Math.max(0, Math.floor((nowUs + tolerance - arrival) / interval)),
        resetUs: arrival - nowUs,
        retryAfterUs: allowAt - nowUs,
      },
    };
  }
  const resetUs = nextArrival - nowUs;
  return {
    outcome: {
      allowed: true,
      remaining: Math.max(0, Math.floor((nowUs + tolerance - nextArrival) / interval)),
      resetUs,
      retryAfterUs: -1,
    },
    next: {
      state: { theoreticalArrivalUs: nextArrival },
      expireAfterMs: Math.ceil(resetUs / 1000) + STATE_EXPIRY_MARGIN_MS,
    },
  };
}

/** Dispatches on the algorithm; state of the other algorithm counts as no state. */
export function limiterStep(
  params: LimiterParameters,
  saved: LimiterState | undefined,
  nowUs: number,
  cost: number,
): LimiterStep<LimiterState> {
  if (params.algorithm === 'token-bucket') {
    return tokenBucketStep(params, saved && 'tokensUnits' in saved ? saved : undefined, nowUs, cost);
  }
  return gcraStep(params, saved && 'theoreticalArrivalUs' in saved ? saved : undefined, nowUs, cost);
}

/** Microseconds to the whole seconds the headers carry, rounded up so a client never retries early. */
export function toRateLimitDecision(params: LimiterParameters, outcome: LimiterOutcome): RateLimitDecision {
  const decision: RateLimitDecision = {
    allowed: outcome.allowed,
    limit: params.limit,
    windowSeconds: params.windowSeconds,
    remaining: outcome.remaining,
    resetSeconds: Math.ceil(outcome.resetUs / MICROS_PER_SECOND),
  };
  if (!outcome.allowed) decision.retryAfterSeconds = Math.ceil(outcome.retryAfterUs / MICROS_PER_SECOND);
  return decision;
}

/**
 * Runs a timeline of requests for one key through the model, with no storage and no expiry:
 * the specification the limiters are tested against.
 */
export function replayTimeline(
  policy: RateLimitPolicy,
  requests: ReadonlyArray<{ atUs: number; cost: number }>,
): LimiterOutcome[] {
  const params = deriveLimiterParameters(policy);
  let state: LimiterState | undefined;
  return requests.map(({ atUs, cost }) => {
    validateCost(cost, policy);
    const step = limiterStep(params, state, atUs, cost);
    if (step.next) state = step.next.state;
    return step.outcome;
  });
}
