import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_TEST_URL } from '../../../test/helpers/db.ts';
import { startTcpProxy, type TcpProxy } from '../../../test/helpers/tcp-proxy.ts';
import { createMemoryRateLimiter } from './memory-limiter.ts';
import type { OnRedisDown, RateLimiter, RateLimitPolicy } from './policy.ts';
import { createRedisRateLimiter } from './redis-limiter.ts';
import { createResilientRateLimiter, type RateLimiterLogger } from './resilient-limiter.ts';

const REDIS = new URL(REDIS_TEST_URL);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const policy = (onRedisDown: OnRedisDown): RateLimitPolicy => ({
  algorithm: 'gcra',
  rate: 1,
  periodSeconds: 3600,
  burst: 2,
  onRedisDown,
});

function recordingLogger() {
  const lines: Array<{ level: 'warn' | 'info'; message: string }> = [];
  const logger: RateLimiterLogger = {
    warn: (_, message) => lines.push({ level: 'warn', message }),
    info: (_, message) => lines.push({ level: 'info', message }),
  };
  return { logger, lines };
}

async function redisBehindProxy(): Promise<{ proxy: TcpProxy; redis: Redis }> {
  const proxy = await startTcpProxy({ host: REDIS.hostname, port: Number(REDIS.port || 6379) });
  // Reconnect quickly once the proxy lets connections through again.
  const redis = new Redis({ host: '127.0.0.1', port: proxy.port, retryStrategy: () => 20 });
  redis.on('error', () => {});
  cleanups.push(
    () => proxy.close(),
    () => redis.disconnect(),
  );
  await redis.ping();
  return { proxy, redis };
}

/**
 * The resilient limiter over `redis`, counting the decisions that went to Redis. Its outage clock is
 * `clock.now`, moved by the test: whether Redis is retried depends on that, not on how fast this
 * machine runs.
 */
function resilientLimiter(redis: Redis, opts: { logger?: RateLimiterLogger; clock?: { now: number } } = {}) {
  const viaRedis = createRedisRateLimiter(redis);
  const calls = { redis: 0 };
  const counted: RateLimiter = {
    decide(...args) {
      calls.redis++;
      return viaRedis.decide(...args);
    },
  };
  const clock = opts.clock;
  const limiter = createResilientRateLimiter({
    redis: counted,
    local: createMemoryRateLimiter(),
    logger: opts.logger,
    timeoutMs: 100,
    retryRedisAfterMs: 200,
    now: clock ? () => clock.now : undefined,
  });
  return Object.assign(limiter, { calls });
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

describe('resilient rate limiter', () => {
  it('asks Redis while it answers', async () => {
    const { redis } = await redisBehindProxy();
    const limiter = resilientLimiter(redis);
    const keyId = `test-${randomUUID()}`;
    // The decisions come from Redis: a second limiter on the same Redis sees the spent quota.
    await limiter.decide(keyId, policy('fail-closed'));
    const decision = await resilientLimiter(redis).decide(keyId, policy('fail-closed'));
    expect(decision).toMatchObject({ allowed: true, remaining: 0 });
    expect(decision.fallback).toBeUndefined();
  });

  describe('when Redis hangs', () => {
    it('fail-open admits, within the timeout', async () => {
      const { proxy, redis } = await redisBehindProxy();
      const limiter = resilientLimiter(redis);
      proxy.hang();
      const { result, ms } = await timed(() => limiter.decide(`test-${randomUUID()}`, policy('fail-open')));
      expect(result).toMatchObject({ allowed: true, fallback: 'fail-open', limit: 2 });
      expect(ms).toBeLessThan(1000);
    });

    it('fail-closed refuses with KG_RATE_LIMITER_UNAVAILABLE', async () => {
      const { proxy, redis } = await redisBehindProxy();
      const limiter = resilientLimiter(redis);
      proxy.hang();
      await expect(limiter.decide(`test-${randomUUID()}`, policy('fail-closed'))).rejects.toMatchObject({
        code: 'KG_RATE_LIMITER_UNAVAILABLE',
        status: 503,
      });
    });

    it('local decides in process, enforcing the same policy', async () => {
      const { proxy, redis } = await redisBehindProxy();
      const limiter = resilientLimiter(redis);
      proxy.hang();
      const keyId = `test-${randomUUID()}`;
      const decisions = [];
      for (let i = 0; i < 3; i++) decisions.push(await limiter.decide(keyId, policy('local')));
      expect(decisions.map((d) => [d.allowed, d.fallback])).toEqual([
        [true, 'local'],
        [true, 'local'],
        [false, 'local'],
      ]);
    });

    it('stops waiting for Redis once it is known to be down', async () => {
      const { proxy, redis } = await redisBehindProxy();
      const clock = { now: 0 };
      const limiter = resilientLimiter(redis, { clock });
      proxy.hang();
      const first = await limiter.decide(`test-${randomUUID()}`, policy('fail-open'));
      expect({ fallback: first.fallback, redisCalls: limiter.calls.redis }).toEqual({
        fallback: 'fail-open',
        redisCalls: 1,
      });
      // Still within retryRedisAfterMs: Redis is not asked, so nothing waits for it.
      clock.now += 199;
      const second = await limiter.decide(`test-${randomUUID()}`, policy('fail-open'));
      expect({ fallback: second.fallback, redisCalls: limiter.calls.redis }).toEqual({
        fallback: 'fail-open',
        redisCalls: 1,
      });
    });
  });

  it('probes a Redis that is still down with one request, the others not waiting', async () => {
    const { proxy, redis } = await redisBehindProxy();
    const clock = { now: 0 };
    const limiter = resilientLimiter(redis, { clock });
    proxy.hang();
    await limiter.decide(`test-${randomUUID()}`, policy('fail-open'));
    expect(limiter.calls.redis).toBe(1);
    clock.now += 250; // past retryRedisAfterMs
    const attempts = await Promise.all(
      Array.from({ length: 10 }, () => limiter.decide(`test-${randomUUID()}`, policy('fail-open'))),
    );
    expect(attempts.every((result) => result.fallback === 'fail-open')).toBe(true);
    // One of the ten went to Redis (and waited for it); the nine others did not.
    expect(limiter.calls.redis).toBe(2);
    // The failed probe starts a new quiet period.
    await limiter.decide(`test-${randomUUID()}`, policy('fail-open'));
    expect(limiter.calls.redis).toBe(2);
  });

  it('goes back to Redis when it returns, and logs the outage once each way', async () => {
    const { proxy, redis } = await redisBehindProxy();
    const { logger, lines } = recordingLogger();
    const clock = { now: 0 };
    const limiter = resilientLimiter(redis, { logger, clock });
    const keyId = `test-${randomUUID()}`;
    proxy.cut();
    for (let i = 0; i < 5; i++) {
      expect((await limiter.decide(keyId, policy('local'))).fallback).toBe('local');
    }
    expect(limiter.calls.redis).toBe(1);
    proxy.restore();
    await redis.ping();
    clock.now += 250; // past retryRedisAfterMs
    const decision = await limiter.decide(keyId, policy('local'));
    expect(decision.fallback).toBeUndefined();
    expect(decision.allowed).toBe(true);
    expect(limiter.calls.redis).toBe(2);
    expect(lines.map((line) => line.level)).toEqual(['warn', 'info']);
  });

  it('falls back when Redis is not listening at all', async () => {
    // A socket path nothing listens on: refused at once, and no other test can start listening there.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-no-redis-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Reconnection is a minute away: an answer can only come from the limiter's own timeout.
    const redis = new Redis({ path: path.join(dir, 'redis.sock'), retryStrategy: () => 60_000 });
    redis.on('error', () => {});
    cleanups.push(() => redis.disconnect());
    const limiter = resilientLimiter(redis);
    const result = await limiter.decide(`test-${randomUUID()}`, policy('local'));
    expect(result).toMatchObject({ allowed: true, fallback: 'local' });
    expect(limiter.calls.redis).toBe(1);
    expect(redis.status).not.toBe('ready');
  });

  it('reports a bad policy as such, not as an outage', async () => {
    const { proxy, redis } = await redisBehindProxy();
    const limiter = resilientLimiter(redis);
    proxy.cut();
    await expect(limiter.decide('k', { ...policy('fail-open'), burst: 0 })).rejects.toMatchObject({
      code: 'KG_VALIDATION_FAILED',
    });
  });
});
