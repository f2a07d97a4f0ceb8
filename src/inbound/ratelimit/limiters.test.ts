import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_TEST_URL } from '../../../test/helpers/db.ts';
import { redisKeys } from '../../storage/redis-keys.ts';
import { createMemoryRateLimiter } from './memory-limiter.ts';
import { deriveLimiterParameters, replayTimeline, toRateLimitDecision } from './model.ts';
import type { RateLimitAlgorithm, RateLimitDecision, RateLimiter, RateLimitPolicy } from './policy.ts';
import { createRedisRateLimiter } from './redis-limiter.ts';

const redis = new Redis(REDIS_TEST_URL);
afterAll(() => redis.quit());

const SECOND = 1_000_000;
const uniqueKeyId = () => `test-${randomUUID()}`;
const policy = (overrides: Partial<RateLimitPolicy>): RateLimitPolicy => ({
  algorithm: 'token-bucket',
  rate: 10,
  periodSeconds: 1,
  burst: 5,
  onRedisDown: 'fail-closed',
  ...overrides,
});

describe('Lua scripts, in-process limiter and reference model', () => {
  it('agree on every decision of random request timelines', async () => {
    const policyArbitrary = fc.record({
      algorithm: fc.constantFrom<RateLimitAlgorithm>('token-bucket', 'gcra'),
      rate: fc.integer({ min: 1, max: 1000 }),
      periodSeconds: fc.constantFrom(1, 3, 60, 3600),
      burst: fc.integer({ min: 1, max: 20 }),
      onRedisDown: fc.constant('local' as const),
    });
    // Gaps include landing just before, at and just after the moment a request is earned back, where
    // a microsecond of difference between the implementations would flip a decision.
    const scenarioArbitrary = policyArbitrary.chain((shape) => {
      const intervalUs = Math.round((shape.periodSeconds * SECOND) / shape.rate);
      const gapArbitrary = fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 2_000 }),
        fc
          .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: -2, max: 2 }))
          .map(([intervals, offset]) => Math.max(0, intervals * intervalUs + offset)),
        fc.integer({ min: 0, max: 3 * SECOND }),
        fc.integer({ min: 0, max: 7200 * SECOND }),
      );
      const stepsArbitrary = fc.array(fc.tuple(gapArbitrary, fc.integer({ min: 0, max: 3 })), {
        minLength: 1,
        maxLength: 40,
      });
      return fc.tuple(fc.constant(shape), stepsArbitrary);
    });
    await fc.assert(
      fc.asyncProperty(
        scenarioArbitrary,
        // Around today's clock in microseconds, where a lossy number format would show.
        fc.integer({ min: 1_700_000_000 * SECOND, max: 1_900_000_000 * SECOND }),
        async ([shape, steps], start) => {
          const timeline = timelineFromGaps(start, steps, shape.burst);
          const params = deriveLimiterParameters(shape);
          const expected = replayTimeline(shape, timeline).map((outcome) =>
            toRateLimitDecision(params, outcome),
          );

          let now = 0;
          const inRedis = createRedisRateLimiter(redis, { clockUs: () => now });
          const inProcess = createMemoryRateLimiter({ clockUs: () => now });
          const keyId = uniqueKeyId();
          // The same timeline through the script that claims a nonce first (cost-1 steps): a fresh
          // nonce decides like the plain script, and replaying it spends nothing (the next step shows).
          const withNonceKeyId = uniqueKeyId();
          for (const [i, { atUs, cost }] of timeline.entries()) {
            now = atUs;
            const context = { step: i, atUs, cost };
            expect({ ...context, decision: await inRedis.decide(keyId, shape, cost) }).toEqual({
              ...context,
              decision: expected[i],
            });
            expect({ ...context, decision: await inProcess.decide(keyId, shape, cost) }).toEqual({
              ...context,
              decision: expected[i],
            });
            const withNonce =
              cost === 1
                ? await inRedis.claimNonceAndDecide(withNonceKeyId, `nonce-${i}`, 600, shape)
                : await inRedis.decide(withNonceKeyId, shape, cost);
            expect({ ...context, decision: withNonce }).toEqual({ ...context, decision: expected[i] });
            if (cost === 1) {
              expect(await inRedis.claimNonceAndDecide(withNonceKeyId, `nonce-${i}`, 600, shape)).toBe(
                'replayed',
              );
            }
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe.each([
  ['redis', () => createRedisRateLimiter(redis)],
  ['memory', () => createMemoryRateLimiter()],
] as Array<[string, () => RateLimiter]>)('%s limiter on its real clock', (_, createLimiter) => {
  it.each(['token-bucket', 'gcra'] as RateLimitAlgorithm[])(
    '%s: admits the burst, then refills with time',
    async (algorithm) => {
      const limiter = createLimiter();
      const keyId = uniqueKeyId();
      // One request earned back every 500 ms: the three decisions below only need to come within
      // that of each other (a wide margin on a busy machine) for the third to be denied.
      const twoPerSecond = policy({ algorithm, rate: 2, burst: 2 });
      expect((await limiter.decide(keyId, twoPerSecond)).allowed).toBe(true);
      expect((await limiter.decide(keyId, twoPerSecond)).allowed).toBe(true);
      const denied = await limiter.decide(keyId, twoPerSecond);
      expect(denied).toMatchObject({
        allowed: false,
        remaining: 0,
        retryAfterSeconds: 1,
        limit: 2,
        windowSeconds: 1,
      });
      // Waiting longer than an interval can only help: the burst caps what comes back.
      await sleep(600);
      expect((await limiter.decide(keyId, twoPerSecond)).allowed).toBe(true);
    },
  );

  it('keeps separate quotas per key', async () => {
    const limiter = createLimiter();
    const onePerHour = policy({ rate: 1, periodSeconds: 3600, burst: 1 });
    expect((await limiter.decide(uniqueKeyId(), onePerHour)).allowed).toBe(true);
    expect((await limiter.decide(uniqueKeyId(), onePerHour)).allowed).toBe(true);
  });

  it('survives a key switching algorithm', async () => {
    const limiter = createLimiter();
    const keyId = uniqueKeyId();
    expect((await limiter.decide(keyId, policy({ algorithm: 'token-bucket' }))).allowed).toBe(true);
    expect((await limiter.decide(keyId, policy({ algorithm: 'gcra' }))).allowed).toBe(true);
    expect((await limiter.decide(keyId, policy({ algorithm: 'token-bucket' }))).remaining).toBe(3);
  });

  it('refuses a cost above the burst instead of denying it forever', async () => {
    await expect(createLimiter().decide(uniqueKeyId(), policy({ burst: 2 }), 3)).rejects.toThrow(RangeError);
  });
});

describe('redis limiter', () => {
  it('stores state that expires once the quota would be whole again', async () => {
    const keyId = uniqueKeyId();
    const limiter = createRedisRateLimiter(redis);
    await limiter.decide(keyId, policy({ algorithm: 'token-bucket', rate: 1, periodSeconds: 60, burst: 1 }));
    await limiter.decide(keyId, policy({ algorithm: 'gcra', rate: 1, periodSeconds: 60, burst: 1 }));
    for (const algorithm of ['token-bucket', 'gcra']) {
      const ttlMs = await redis.pttl(redisKeys.rateLimitState(keyId, algorithm));
      expect(ttlMs).toBeGreaterThan(60_000);
      expect(ttlMs).toBeLessThanOrEqual(70_000);
    }
  });

  it.each([
    ['token-bucket', 'decide'],
    ['gcra', 'decide'],
    ['token-bucket', 'claims'],
    ['gcra', 'claims'],
  ] as Array<[RateLimitAlgorithm, 'decide' | 'claims']>)(
    '%s: 200 requests racing from two processes admit exactly the burst (%s)',
    async (algorithm, mode) => {
      const keyId = uniqueKeyId();
      // One request an hour: nothing refills during the test, so exactly the burst may pass.
      const burstOfFifty = policy({ algorithm, rate: 1, periodSeconds: 3600, burst: 50 });
      const worker = spawn(
        process.execPath,
        [
          fileURLToPath(new URL('./concurrent-decisions-worker.ts', import.meta.url)),
          REDIS_TEST_URL,
          keyId,
          JSON.stringify(burstOfFifty),
          '100',
          mode,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      try {
        const exited = once(worker, 'exit');
        const lines: string[] = [];
        const lineReader = createInterface({ input: worker.stdout });
        lineReader.on('line', (line) => lines.push(line));
        const ready = new Promise<void>((resolve, reject) => {
          lineReader.on('line', (line) => line === 'ready' && resolve());
          void exited.then(
            ([code]) => reject(new Error(`worker exited with ${code} before it was ready`)),
            reject,
          );
        });
        ready.catch(() => {}); // awaited below; not unhandled if the test fails before that

        const limiter = createRedisRateLimiter(redis);
        await limiter.decide(uniqueKeyId(), burstOfFifty); // loads the script before the race
        // The start moment is set only once the worker is connected and waiting for it: both
        // processes then send waves of 20 concurrent requests 10 ms apart from the same wall-clock
        // moment, so that their requests interleave in Redis whatever the start-up time.
        await ready;
        const startAtMs = Date.now() + 200;
        worker.stdin.end(`${startAtMs}\n`);
        await sleep(startAtMs - Date.now());
        // In claims mode each wave of 20 goes to Redis as one script call deciding all of them.
        const pending: Array<Promise<RateLimitDecision | 'replayed'>> = [];
        for (let i = 0; i < 100; i++) {
          if (i > 0 && i % 20 === 0) await sleep(10);
          pending.push(
            mode === 'claims'
              ? limiter.claimNonceAndDecide(keyId, `test-${i}`, 600, burstOfFifty)
              : limiter.decide(keyId, burstOfFifty),
          );
        }
        const here = await Promise.all(pending);
        const [exitCode] = await exited;
        expect(exitCode).toBe(0);
        const admittedHere = here.filter((d) => d !== 'replayed' && d.allowed).length;
        const admittedThere = (JSON.parse(lines.at(-1) ?? '') as { admitted: number }).admitted;
        expect(admittedHere + admittedThere).toBe(50);
        // Both processes really competed for the quota.
        expect(admittedHere).toBeGreaterThan(0);
        expect(admittedThere).toBeGreaterThan(0);
      } finally {
        if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
      }
    },
  );
});

describe('redis limiter, nonce claims made in one turn', () => {
  it.each(['token-bucket', 'gcra'] as RateLimitAlgorithm[])(
    '%s: go to Redis as one script call and decide as the same claims one after the other',
    async (algorithm) => {
      const now = 1_800_000_000 * SECOND;
      const scriptCalls = { count: 0 };
      const counted = countingEvalsha(scriptCalls);
      const batched = createRedisRateLimiter(counted, { clockUs: () => now });
      const sequential = createRedisRateLimiter(redis, { clockUs: () => now });
      const fiveThenOneAMinute = policy({ algorithm, rate: 1, periodSeconds: 60, burst: 5 });
      // Eight claims, one nonce used twice: five admitted, the repeat replayed, the rest denied.
      const nonces = ['a', 'b', 'c', 'b', 'd', 'e', 'f', 'g'];
      const [batchedKey, sequentialKey] = [uniqueKeyId(), uniqueKeyId()];
      const together = await Promise.all(
        nonces.map((n) => batched.claimNonceAndDecide(batchedKey, n, 600, fiveThenOneAMinute)),
      );
      const oneByOne: Array<RateLimitDecision | 'replayed'> = [];
      for (const n of nonces)
        oneByOne.push(await sequential.claimNonceAndDecide(sequentialKey, n, 600, fiveThenOneAMinute));

      expect(scriptCalls.count).toBe(1);
      expect(together).toEqual(oneByOne);
      expect(together.map((d) => (d === 'replayed' ? d : d.allowed))).toEqual([
        true,
        true,
        true,
        'replayed',
        true,
        true,
        false,
        false,
      ]);
      // The claimed nonces stay claimed, for the next turn and for every other node.
      expect(await batched.claimNonceAndDecide(batchedKey, 'e', 600, fiveThenOneAMinute)).toBe('replayed');
      await counted.quit();
    },
  );

  it('splits a turn of more than 256 claims on one key into further script calls, losing none', async () => {
    const scriptCalls = { count: 0 };
    const counted = countingEvalsha(scriptCalls);
    const limiter = createRedisRateLimiter(counted);
    const keyId = uniqueKeyId();
    const twoHundredFifty = policy({ rate: 1, periodSeconds: 3600, burst: 250 });
    const decisions = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        limiter.claimNonceAndDecide(keyId, `n${i}`, 600, twoHundredFifty),
      ),
    );
    expect(scriptCalls.count).toBe(2);
    expect(decisions.filter((d) => d !== 'replayed' && d.allowed)).toHaveLength(250);
    expect(decisions.filter((d) => d === 'replayed')).toEqual([]);
    await counted.quit();
  });

  it('fails every claim of a script call that fails, and only those', async () => {
    const broken = new Redis(REDIS_TEST_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    broken.on('error', () => {});
    const limiter = createRedisRateLimiter(broken);
    const other = createRedisRateLimiter(redis);
    await broken.connect();
    broken.disconnect(); // every command now fails at once
    const keyId = uniqueKeyId();
    const shape = policy({});
    const results = await Promise.allSettled([
      limiter.claimNonceAndDecide(keyId, 'x1', 600, shape),
      limiter.claimNonceAndDecide(keyId, 'x2', 600, shape),
      other.claimNonceAndDecide(keyId, 'x3', 600, shape),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
  });
});

/** A connection to the test Redis that counts the script calls made through it. */
function countingEvalsha(calls: { count: number }): Redis {
  const counted = new Redis(REDIS_TEST_URL);
  const evalsha = counted.evalsha.bind(counted) as (...args: unknown[]) => Promise<unknown>;
  (counted as unknown as { evalsha: (...args: unknown[]) => Promise<unknown> }).evalsha = (...args) => {
    calls.count += 1;
    return evalsha(...args);
  };
  return counted;
}

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
