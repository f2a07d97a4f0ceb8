import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeygateError } from '../../errors.ts';
import { rateLimitHeaders } from './headers.ts';
import {
  deriveLimiterParameters,
  type LimiterState,
  limiterStep,
  replayTimeline,
  toRateLimitDecision,
} from './model.ts';
import type { RateLimitAlgorithm, RateLimitPolicy } from './policy.ts';

const T0 = 1_700_000_000_000_000; // microseconds: large enough to catch lost precision
const SECOND = 1_000_000;

function policy(overrides: Partial<RateLimitPolicy> = {}): RateLimitPolicy {
  return {
    algorithm: 'token-bucket',
    rate: 10,
    periodSeconds: 1,
    burst: 5,
    onRedisDown: 'fail-open',
    ...overrides,
  };
}

const requestsAt = (...times: number[]) => times.map((atUs) => ({ atUs, cost: 1 }));

describe.each(['token-bucket', 'gcra'] as RateLimitAlgorithm[])('%s model', (algorithm) => {
  const tenPerSecondBurstFive = policy({ algorithm });

  it('admits the burst at once, then one request per refill interval', () => {
    const outcomes = replayTimeline(
      tenPerSecondBurstFive,
      requestsAt(T0, T0, T0, T0, T0, T0, T0 + 99_999, T0 + 100_000, T0 + 100_001),
    );
    expect(outcomes.map((o) => o.allowed)).toEqual([true, true, true, true, true, false, false, true, false]);
    expect(outcomes.map((o) => o.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0, 0, 0]);
    expect(outcomes[5]).toEqual({ allowed: false, remaining: 0, resetUs: 500_000, retryAfterUs: 100_000 });
    expect(outcomes[6]?.retryAfterUs).toBe(1);
    expect(outcomes[8]?.retryAfterUs).toBe(99_999);
  });

  it('is whole again after burst / rate seconds, and never holds more than the burst', () => {
    const outcomes = replayTimeline(tenPerSecondBurstFive, requestsAt(T0, T0 + 10 * SECOND));
    expect(outcomes[0]).toMatchObject({ allowed: true, remaining: 4, resetUs: 100_000 });
    expect(outcomes[1]).toMatchObject({ allowed: true, remaining: 4, resetUs: 100_000 });
  });

  it('spends a cost of several requests at once, or none of it', () => {
    const outcomes = replayTimeline(tenPerSecondBurstFive, [
      { atUs: T0, cost: 3 },
      { atUs: T0, cost: 3 },
      { atUs: T0, cost: 2 },
      { atUs: T0, cost: 0 },
    ]);
    expect(outcomes.map((o) => [o.allowed, o.remaining])).toEqual([
      [true, 2],
      [false, 2],
      [true, 0],
      [true, 0],
    ]);
    expect(outcomes[1]?.retryAfterUs).toBe(100_000);
  });

  it('reports the policy as quota = burst over the seconds needed to earn it back', () => {
    const decision = toRateLimitDecision(
      deriveLimiterParameters(policy({ algorithm, rate: 100, periodSeconds: 60, burst: 20 })),
      { allowed: false, remaining: 0, resetUs: 1_500_001, retryAfterUs: 400_000 },
    );
    expect(decision).toEqual({
      allowed: false,
      limit: 20,
      windowSeconds: 12,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 1,
    });
  });

  it('does not refill twice when the clock steps back', () => {
    const outcomes = replayTimeline(
      policy({ algorithm, rate: 1, periodSeconds: 1, burst: 1 }),
      requestsAt(T0, T0 - 5 * SECOND, T0 + SECOND - 1, T0 + SECOND),
    );
    expect(outcomes.map((o) => o.allowed)).toEqual([true, false, false, true]);
  });
});

// Random policies small enough to exercise boundaries, and timelines mixing bursts, small steps and long idles.
const policyArbitrary = fc.record({
  algorithm: fc.constantFrom<RateLimitAlgorithm>('token-bucket', 'gcra'),
  rate: fc.integer({ min: 1, max: 1000 }),
  periodSeconds: fc.constantFrom(1, 2, 7, 60, 3600),
  burst: fc.integer({ min: 1, max: 20 }),
  onRedisDown: fc.constant('local' as const),
});
const gapArbitrary = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 2_000 }),
  fc.integer({ min: 0, max: 3 * SECOND }),
  fc.integer({ min: 0, max: 7200 * SECOND }),
);

describe('model properties', () => {
  it('token bucket and GCRA are the same shaper when the period divides evenly by the rate', () => {
    fc.assert(
      fc.property(
        policyArbitrary.filter((p) => (p.periodSeconds * SECOND) % p.rate === 0),
        fc.array(fc.tuple(gapArbitrary, fc.integer({ min: 0, max: 3 })), { maxLength: 60 }),
        (shape, steps) => {
          const timeline = timelineFromGaps(T0, steps, shape.burst);
          const bucket = replayTimeline({ ...shape, algorithm: 'token-bucket' }, timeline);
          const gcra = replayTimeline({ ...shape, algorithm: 'gcra' }, timeline);
          expect(gcra).toEqual(bucket);
        },
      ),
    );
  });

  it('Retry-After is exact: one microsecond earlier is still denied, at it the request passes', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(gapArbitrary, { minLength: 1, maxLength: 40 }), (shape, gaps) => {
        const params = deriveLimiterParameters(shape);
        let state: LimiterState | undefined;
        let at = T0;
        for (const gap of gaps) {
          at += gap;
          const step = limiterStep(params, state, at, 1);
          if (step.next) state = step.next.state;
          if (!step.outcome.allowed) {
            const retryAt = at + step.outcome.retryAfterUs;
            expect(limiterStep(params, state, retryAt - 1, 1).outcome.allowed).toBe(false);
            expect(limiterStep(params, state, retryAt, 1).outcome.allowed).toBe(true);
          }
        }
      }),
    );
  });

  it('remaining is exact: that many more requests pass at the same instant, and no more', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(gapArbitrary, { minLength: 1, maxLength: 40 }), (shape, gaps) => {
        const params = deriveLimiterParameters(shape);
        let state: LimiterState | undefined;
        let at = T0;
        for (const gap of gaps) {
          at += gap;
          const step = limiterStep(params, state, at, 1);
          if (step.next) state = step.next.state;
          let probe = state;
          for (let i = 0; i < step.outcome.remaining; i++) {
            const next = limiterStep(params, probe, at, 1);
            expect(next.outcome.allowed).toBe(true);
            probe = next.next?.state;
          }
          expect(limiterStep(params, probe, at, 1).outcome.allowed).toBe(false);
        }
      }),
    );
  });
});

describe('policy validation', () => {
  it.each([
    [{ rate: 0 }, 'rate'],
    [{ rate: 1.5 }, 'rate'],
    [{ burst: -1 }, 'burst'],
    [{ periodSeconds: 0.5 }, 'periodSeconds'],
    [{ burst: 1_000_000, periodSeconds: 86_400 }, 'burst * periodSeconds'],
    [{ rate: 2_000_000, periodSeconds: 1 }, 'microsecond'],
    [{ algorithm: 'leaky' as RateLimitAlgorithm }, 'algorithm'],
  ])('rejects %j', (overrides, mentioned) => {
    let caught: unknown;
    try {
      deriveLimiterParameters(policy(overrides));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeygateError);
    expect((caught as KeygateError).code).toBe('KG_VALIDATION_FAILED');
    expect((caught as KeygateError).message).toContain(mentioned);
  });
});

describe('rateLimitHeaders', () => {
  it('carries the policy and the state, and Retry-After only when denied', () => {
    const allowed = { allowed: true, limit: 20, windowSeconds: 2, remaining: 7, resetSeconds: 1 };
    expect(rateLimitHeaders(allowed)).toEqual({
      'RateLimit-Policy': '"default";q=20;w=2',
      RateLimit: '"default";r=7;t=1',
    });
    expect(rateLimitHeaders({ ...allowed, allowed: false, remaining: 0, retryAfterSeconds: 3 })).toEqual({
      'RateLimit-Policy': '"default";q=20;w=2',
      RateLimit: '"default";r=0;t=1',
      'Retry-After': '3',
    });
  });
});

/** Absolute request times from gaps between requests; costs capped at the burst. */
function timelineFromGaps(startUs: number, steps: Array<[gap: number, cost: number]>, burst: number) {
  const timeline: Array<{ atUs: number; cost: number }> = [];
  let atUs = startUs;
  for (const [gap, cost] of steps) {
    atUs += gap;
    timeline.push({ atUs, cost: Math.min(cost, burst) });
  }
  return timeline;
}
