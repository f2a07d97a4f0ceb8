import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisOutageGuard } from '../storage/redis-outage.ts';
import { createAdmission } from './admission.ts';
import { createMemoryNonceStore, createRedisNonceStore } from './nonce/nonce-store.ts';
import {
  createMemoryRateLimiter,
  createRedisRateLimiter,
  createResilientRateLimiter,
  type RateLimitPolicy,
} from './ratelimit/index.ts';
import { createReplayGuard } from './replay-guard.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
afterAll(() => redis.quit());

const threePerHour = (onRedisDown: RateLimitPolicy['onRedisDown']): RateLimitPolicy => ({
  algorithm: 'token-bucket',
  rate: 1,
  periodSeconds: 3600,
  burst: 3,
  onRedisDown,
});

/** The listener's wiring, with a switch that makes every Redis command fail. */
function admissionOnFlakyRedis() {
  let now = 0;
  const state = { down: false };
  const flaky = new Proxy(redis, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        state.down ? Promise.reject(new Error('ECONNREFUSED')) : value.apply(target, args);
    },
  });
  const outage = createRedisOutageGuard({
    what: 'test',
    whileDown: '-',
    timeoutMs: 500,
    retryAfterMs: 1000,
    now: () => now,
  });
  const redisLimiter = createRedisRateLimiter(flaky);
  const limiter = createResilientRateLimiter({
    redis: redisLimiter,
    local: createMemoryRateLimiter(),
    outage,
  });
  const replay = createReplayGuard({
    redis: createRedisNonceStore(flaky),
    local: createMemoryNonceStore({ now: () => now }),
    ttlSeconds: 600,
    outage,
    now: () => now,
  });
  const admission = createAdmission({
    replay,
    limiter,
    redis: { limiter: redisLimiter, outage, nonceTtlSeconds: 600 },
  });
  return { admission, state, advance: (ms: number) => (now += ms) };
}

describe('admission', () => {
  it('claims the nonce and spends the quota in one script; a replay spends nothing', async () => {
    const { admission } = admissionOnFlakyRedis();
    const keyId = `test-${randomUUID()}`;
    const policy = threePerHour('fail-closed');
    expect(await admission.admit(keyId, 'nonce-aaaaaaaaaaaa', policy)).toMatchObject({ remaining: 2 });
    expect(await admission.admit(keyId, 'nonce-aaaaaaaaaaaa', policy)).toBe('replayed');
    expect(await admission.admit(keyId, 'nonce-bbbbbbbbbbbb', policy)).toMatchObject({ remaining: 1 });
  });

  it('checks the nonce in process while Redis is down, before the key policy refuses', async () => {
    const { admission, state, advance } = admissionOnFlakyRedis();
    const keyId = `test-${randomUUID()}`;
    const closed = threePerHour('fail-closed');
    const open = threePerHour('fail-open');
    expect(await admission.admit(keyId, 'nonce-before-outage', open)).toMatchObject({ remaining: 2 });

    state.down = true;
    expect(await admission.admit(keyId, 'nonce-during-outage', open)).toMatchObject({ allowed: true });
    expect(await admission.admit(keyId, 'nonce-during-outage', closed)).toBe('replayed');
    await expect(admission.admit(keyId, 'nonce-refused-closed', closed)).rejects.toMatchObject({
      code: 'KG_RATE_LIMITER_UNAVAILABLE',
    });

    state.down = false;
    advance(2000);
    // Redis never saw the outage's nonce; this node did, and still refuses it without spending.
    expect(await admission.admit(keyId, 'nonce-during-outage', open)).toBe('replayed');
    expect(await admission.admit(keyId, 'nonce-after-outage', open)).toMatchObject({ remaining: 1 });
    expect(await admission.admit(keyId, 'nonce-after-outage', open)).toBe('replayed');
  });
});
