/**
 * The behaviour both token caches promise, run against the in-process cache and against the
 * Redis one on the real Redis. Multi-node and Redis-outage behaviour is in redis.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_TEST_URL } from '../../../test/helpers/db.ts';
import { isKeygateError, KeygateError } from '../../errors.ts';
import { redisKeys } from '../../storage/redis-keys.ts';
import {
  createMemoryTokenCache,
  createRedisTokenCache,
  type FetchedToken,
  type TokenCache,
} from './index.ts';

interface Harness {
  make(now: () => number): TokenCache;
  cleanup(): Promise<void>;
}

function memoryHarness(): Harness {
  return { make: (now) => createMemoryTokenCache({ now }), cleanup: async () => {} };
}

function redisHarness(): Harness {
  const clients: Redis[] = [];
  const caches: TokenCache[] = [];
  return {
    make(now) {
      const redis = new Redis(REDIS_TEST_URL);
      clients.push(redis);
      const cache = createRedisTokenCache(redis, { now });
      caches.push(cache);
      return cache;
    },
    async cleanup() {
      for (const cache of caches) await cache.close();
      for (const redis of clients) redis.disconnect();
    },
  };
}

/** A fetch that counts its calls, answers after `delayMs` and expires after `lifetimeMs`. */
function countingFetch(now: () => number, { delayMs = 50, lifetimeMs = 3_600_000 } = {}) {
  const counter = {
    calls: 0,
    fetch: async (): Promise<FetchedToken> => {
      const n = ++counter.calls;
      await sleep(delayMs);
      return { token: `token-${n}`, expireTime: now() + lifetimeMs };
    },
  };
  return counter;
}

describe.each([
  ['memory', memoryHarness],
  ['redis', redisHarness],
])('token cache contract (%s)', (_, harness) => {
  let h: Harness;
  let tenantIds: string[] = [];
  const PROVIDER = 'acme-pay';
  const newTenant = () => {
    const id = `ten_${randomUUID()}`;
    tenantIds.push(id);
    return id;
  };

  afterEach(async () => {
    await h.cleanup();
    const redis = new Redis(REDIS_TEST_URL);
    for (const t of tenantIds) {
      await redis.del(
        redisKeys.token(t, PROVIDER),
        redisKeys.tokenLock(t, PROVIDER),
        redisKeys.tokenError(t, PROVIDER),
      );
    }
    redis.disconnect();
    tenantIds = [];
  });

  function setup(startMs = Date.now()) {
    h = harness();
    const clock = { ms: startMs };
    const now = () => clock.ms;
    return { clock, now, cache: h.make(now), tenant: newTenant() };
  }

  it('50 concurrent first requests cause exactly one fetch, and all get its token', async () => {
    const { now, cache, tenant } = setup();
    const counter = countingFetch(now);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => cache.getOrFetch(tenant, PROVIDER, counter.fetch)),
    );
    expect(counter.calls).toBe(1);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['token-1']));
    expect(await cache.get(tenant, PROVIDER)).toEqual(results[0]);
    // Cached now: no further fetch.
    await cache.getOrFetch(tenant, PROVIDER, counter.fetch);
    expect(counter.calls).toBe(1);
  });

  it('hands a fetch error to every waiter of that flight, then fetches again on the next call', async () => {
    const { now, cache, tenant } = setup();
    let calls = 0;
    const failing = async (): Promise<FetchedToken> => {
      calls++;
      await sleep(30);
      throw new KeygateError('KG_TOKEN_FETCH_FAILED', 'token endpoint answered 500');
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => cache.getOrFetch(tenant, PROVIDER, failing)),
    );
    expect(calls).toBe(1);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      const reason = (o as PromiseRejectedResult).reason;
      expect(isKeygateError(reason) && reason.message).toBe('token endpoint answered 500');
    }
    const counter = countingFetch(now);
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');
    expect(calls + counter.calls).toBe(2);
  });

  it('honours expiry with the refresh skew (injected clock)', async () => {
    const { clock, now, cache, tenant } = setup();
    const counter = countingFetch(now, { delayMs: 0, lifetimeMs: 60_000 });
    const first = await cache.getOrFetch(tenant, PROVIDER, counter.fetch);
    expect(first.expiresAtMs).toBe(clock.ms + 60_000);
    // A 60 s token: skew is 10% of its life (6 s), shorter than 30 s.
    clock.ms += 53_999;
    expect((await cache.get(tenant, PROVIDER))?.token).toBe('token-1');
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');
    clock.ms += 1;
    expect(await cache.get(tenant, PROVIDER)).toBeNull();
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-2');
    expect(counter.calls).toBe(2);
  });

  it('keeps a token without expiry until it is deleted', async () => {
    const { clock, cache, tenant } = setup();
    await cache.set(tenant, PROVIDER, 'forever', null);
    clock.ms += 365 * 86_400_000;
    expect(await cache.get(tenant, PROVIDER)).toEqual({ token: 'forever', expiresAtMs: null });
    await cache.delete(tenant, PROVIDER);
    expect(await cache.get(tenant, PROVIDER)).toBeNull();
  });

  it('after delete() (a 401 from upstream), the next getOrFetch fetches a new token', async () => {
    const { now, cache, tenant } = setup();
    const counter = countingFetch(now, { delayMs: 0 });
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');
    await cache.delete(tenant, PROVIDER);
    expect(await cache.get(tenant, PROVIDER)).toBeNull();
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-2');
  });

  it('delete(onlyToken) leaves a newer token alone', async () => {
    const { now, cache, tenant } = setup();
    await cache.set(tenant, PROVIDER, 'new', now() + 3_600_000);
    await cache.delete(tenant, PROVIDER, 'old');
    expect((await cache.get(tenant, PROVIDER))?.token).toBe('new');
    await cache.delete(tenant, PROVIDER, 'new');
    expect(await cache.get(tenant, PROVIDER)).toBeNull();
  });

  it('set() takes all three expireTime forms and rejects garbage or a past time', async () => {
    const { now, cache, tenant } = setup(Date.UTC(2026, 10, 23, 5, 0, 0));
    await cache.set(tenant, PROVIDER, 'a', Math.floor(now() / 1000) + 3600);
    expect(await cache.get(tenant, PROVIDER)).toEqual({ token: 'a', expiresAtMs: now() + 3_600_000 });
    await cache.set(tenant, PROVIDER, 'b', now() + 1_800_000);
    expect(await cache.get(tenant, PROVIDER)).toEqual({ token: 'b', expiresAtMs: now() + 1_800_000 });
    await cache.set(tenant, PROVIDER, 'c', '2026-11-23T06:00:00Z');
    expect(await cache.get(tenant, PROVIDER)).toEqual({ token: 'c', expiresAtMs: now() + 3_600_000 });
    await expect(cache.set(tenant, PROVIDER, 'd', 'tomorrow')).rejects.toThrow(/expireTime/);
    await expect(cache.set(tenant, PROVIDER, 'd', 7200)).rejects.toThrow(/not in the future/);
    expect((await cache.get(tenant, PROVIDER))?.token).toBe('c');
  });

  it('keeps tenants and providers apart', async () => {
    const { now, cache, tenant } = setup();
    const other = newTenant();
    await cache.set(tenant, PROVIDER, 'mine', now() + 60_000);
    expect(await cache.get(other, PROVIDER)).toBeNull();
    expect(await cache.get(tenant, 'other-provider')).toBeNull();
  });

  it('a fetch that returns no token fails every waiter', async () => {
    const { cache, tenant } = setup();
    const bad = async () => ({ token: '', expireTime: null });
    await expect(cache.getOrFetch(tenant, PROVIDER, bad)).rejects.toThrow(/non-empty string/);
    expect(await cache.get(tenant, PROVIDER)).toBeNull();
  });
});
