import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_TEST_URL } from '../../test/helpers/db.ts';
import { startTcpProxy } from '../../test/helpers/tcp-proxy.ts';
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

const REDIS = new URL(REDIS_TEST_URL);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const threePerHour = (onRedisDown: RateLimitPolicy['onRedisDown']): RateLimitPolicy => ({
  algorithm: 'token-bucket',
  rate: 1,
  periodSeconds: 3600,
  burst: 3,
  onRedisDown,
});

/** Resolves once `redis` can take commands again (connection errors on the way are expected). */
async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
}

/**
 * The listener's wiring on a Redis reached through a TCP proxy the test can cut, with a clock the
 * test moves (the outage guard's retry period).
 */
async function admissionOnFlakyRedis() {
  let now = 0;
  const proxy = await startTcpProxy({ host: REDIS.hostname, port: Number(REDIS.port || 6379) });
  // No offline queue and no resending: a command issued during the cut fails rather than reaching
  // Redis once it is back, so Redis never sees what was decided during the outage.
  const flaky = new Redis({
    host: '127.0.0.1',
    port: proxy.port,
    retryStrategy: () => 20,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
  });
  flaky.on('error', () => {});
  cleanups.push(
    () => proxy.close(),
    () => flaky.disconnect(),
  );
  await ready(flaky);
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
  return {
    admission,
    cut: () => proxy.cut(),
    async restore() {
      proxy.restore();
      await ready(flaky);
    },
    advance: (ms: number) => (now += ms),
  };
}

describe('admission', () => {
  it('claims the nonce and spends the quota in one script; a replay spends nothing', async () => {
    const { admission } = await admissionOnFlakyRedis();
    const keyId = `test-${randomUUID()}`;
    const policy = threePerHour('fail-closed');
    expect(await admission.admit(keyId, 'nonce-aaaaaaaaaaaa', policy)).toMatchObject({ remaining: 2 });
    expect(await admission.admit(keyId, 'nonce-aaaaaaaaaaaa', policy)).toBe('replayed');
    expect(await admission.admit(keyId, 'nonce-bbbbbbbbbbbb', policy)).toMatchObject({ remaining: 1 });
  });

  it('checks the nonce in process while Redis is down, before the key policy refuses', async () => {
    const { admission, cut, restore, advance } = await admissionOnFlakyRedis();
    const keyId = `test-${randomUUID()}`;
    const closed = threePerHour('fail-closed');
    const open = threePerHour('fail-open');
    expect(await admission.admit(keyId, 'nonce-before-outage', open)).toMatchObject({ remaining: 2 });

    cut();
    expect(await admission.admit(keyId, 'nonce-during-outage', open)).toMatchObject({ allowed: true });
    expect(await admission.admit(keyId, 'nonce-during-outage', closed)).toBe('replayed');
    await expect(admission.admit(keyId, 'nonce-refused-closed', closed)).rejects.toMatchObject({
      code: 'KG_RATE_LIMITER_UNAVAILABLE',
    });

    await restore();
    advance(2000);
    // Redis never saw the outage's nonce; this node did, and still refuses it without spending.
    expect(await admission.admit(keyId, 'nonce-during-outage', open)).toBe('replayed');
    expect(await admission.admit(keyId, 'nonce-after-outage', open)).toMatchObject({ remaining: 1 });
    expect(await admission.admit(keyId, 'nonce-after-outage', open)).toBe('replayed');
  });
});
