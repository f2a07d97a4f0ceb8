/**
 * The Redis token cache as several nodes see it, on the real Redis: two caches with their own
 * connections in this process, a second OS process, and Redis cut away by a TCP proxy.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { REDIS_TEST_URL } from '../../../test/helpers/db.ts';
import { startTcpProxy, type TcpProxy } from '../../../test/helpers/tcp-proxy.ts';
import { isKeygateError, KeygateError } from '../../errors.ts';
import { redisKeys } from '../../storage/redis-keys.ts';
import {
  createRedisTokenCache,
  type FetchedToken,
  type RedisTokenCacheOptions,
  type TokenCache,
} from './index.ts';

const PROVIDER = 'acme-pay';
let admin: Redis;
let tenantIds: string[] = [];
let teardown: Array<() => Promise<void> | void> = [];

beforeAll(() => {
  admin = new Redis(REDIS_TEST_URL);
});
afterAll(() => {
  admin.disconnect();
});
afterEach(async () => {
  for (const step of teardown.reverse()) await step();
  for (const t of tenantIds) {
    await admin.del(
      redisKeys.token(t, PROVIDER),
      redisKeys.tokenLock(t, PROVIDER),
      redisKeys.tokenError(t, PROVIDER),
    );
  }
  teardown = [];
  tenantIds = [];
});

function newTenant(): string {
  const id = `ten_${randomUUID()}`;
  tenantIds.push(id);
  return id;
}

/** One keygate node: its own Redis connection and cache. */
function node(
  options: RedisTokenCacheOptions = {},
  url = REDIS_TEST_URL,
): { redis: Redis; cache: TokenCache } {
  const redis = new Redis(url, { retryStrategy: () => 50 });
  redis.on('error', () => {});
  const cache = createRedisTokenCache(redis, options);
  teardown.push(async () => {
    await cache.close();
    redis.disconnect();
  });
  return { redis, cache };
}

function countingFetch({ delayMs = 100, fail }: { delayMs?: number; fail?: Error } = {}) {
  const counter = {
    calls: 0,
    fetch: async (): Promise<FetchedToken> => {
      const n = ++counter.calls;
      await sleep(delayMs);
      if (fail) throw fail;
      return { token: `token-${n}`, expireTime: Date.now() + 3_600_000 };
    },
  };
  return counter;
}

describe('Redis token cache across nodes', () => {
  it('50 concurrent requests over two nodes (separate connections) cause exactly one fetch', async () => {
    const a = node();
    const b = node();
    const tenant = newTenant();
    const counter = countingFetch();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).cache.getOrFetch(tenant, PROVIDER, counter.fetch)),
    );
    expect(counter.calls).toBe(1);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['token-1']));
    expect(await a.redis.exists(redisKeys.tokenLock(tenant, PROVIDER))).toBe(0);
  });

  it('stores the token with PX = its remaining lifetime, or no expiry', async () => {
    const { redis, cache } = node();
    const tenant = newTenant();
    await cache.set(tenant, PROVIDER, 'short', Date.now() + 60_000);
    const pttl = await redis.pttl(redisKeys.token(tenant, PROVIDER));
    expect(pttl).toBeGreaterThan(58_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    await cache.set(tenant, PROVIDER, 'forever', null);
    expect(await redis.pttl(redisKeys.token(tenant, PROVIDER))).toBe(-1);
  });

  it("a delete on one node empties another node's L1 at once (pub/sub), and the next request fetches once", async () => {
    // A long L1 TTL, so only the invalidation message can explain B seeing the delete.
    const a = node({ l1TtlMs: 60_000 });
    const b = node({ l1TtlMs: 60_000 });
    const tenant = newTenant();
    const tokenKey = redisKeys.token(tenant, PROVIDER);
    // A token as a node that fetched it leaves it in Redis, written without a pub/sub message.
    const expiresAtMs = Date.now() + 3_600_000;
    const stored = { token: 'token-0', expiresAtMs, refreshAtMs: expiresAtMs - 30_000 };
    await admin.set(tokenKey, JSON.stringify(stored), 'PX', 3_600_000);
    expect((await b.cache.get(tenant, PROVIDER))?.token).toBe('token-0');
    // B answers from L1 even with the Redis copy gone behind its back...
    await admin.del(tokenKey);
    expect((await b.cache.get(tenant, PROVIDER))?.token).toBe('token-0');
    // ...but a delete() on A reaches it. (Repeated only in case B's subscription is still starting.)
    await vi.waitFor(
      async () => {
        await a.cache.delete(tenant, PROVIDER);
        expect(await b.cache.get(tenant, PROVIDER)).toBeNull();
      },
      { timeout: 2_000, interval: 20 },
    );
    const counter = countingFetch({ delayMs: 50 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).cache.getOrFetch(tenant, PROVIDER, counter.fetch)),
    );
    expect(counter.calls).toBe(1);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['token-1']));
  });

  it('without any message, an L1 copy is served for at most l1TtlMs (1 s by default)', async () => {
    const { cache } = node();
    const tenant = newTenant();
    await cache.set(tenant, PROVIDER, 'cached', Date.now() + 3_600_000);
    await admin.del(redisKeys.token(tenant, PROVIDER)); // gone, and nobody told this node
    expect((await cache.get(tenant, PROVIDER))?.token).toBe('cached');
    await sleep(1_050);
    expect(await cache.get(tenant, PROVIDER)).toBeNull();
  });

  it("a set on one node replaces another node's L1 copy", async () => {
    const a = node({ l1TtlMs: 60_000 });
    const b = node({ l1TtlMs: 60_000 });
    const tenant = newTenant();
    await a.cache.set(tenant, PROVIDER, 'first', Date.now() + 3_600_000);
    await vi.waitFor(async () => expect((await b.cache.get(tenant, PROVIDER))?.token).toBe('first'));
    await vi.waitFor(
      async () => {
        await a.cache.set(tenant, PROVIDER, 'second', Date.now() + 3_600_000);
        expect((await b.cache.get(tenant, PROVIDER))?.token).toBe('second');
      },
      { timeout: 2_000, interval: 20 },
    );
  });

  it("a fetch error reaches the other node's waiters of that flight; the lock is released and the next call retries", async () => {
    const a = node();
    const b = node();
    const tenant = newTenant();
    const failing = countingFetch({
      delayMs: 500,
      fail: new KeygateError('KG_TOKEN_FETCH_FAILED', 'token endpoint answered 503'),
    });
    const first = a.cache.getOrFetch(tenant, PROVIDER, failing.fetch);
    await vi.waitFor(async () => expect(await admin.exists(redisKeys.tokenLock(tenant, PROVIDER))).toBe(1));
    const waiters = Array.from({ length: 10 }, () => b.cache.getOrFetch(tenant, PROVIDER, failing.fetch));
    const outcomes = await Promise.allSettled([first, ...waiters]);
    expect(failing.calls).toBe(1);
    for (const o of outcomes) {
      const reason = (o as PromiseRejectedResult).reason;
      expect(isKeygateError(reason) && [reason.code, reason.message]).toEqual([
        'KG_TOKEN_FETCH_FAILED',
        'token endpoint answered 503',
      ]);
    }
    expect(await admin.exists(redisKeys.tokenLock(tenant, PROVIDER))).toBe(0);
    const ok = countingFetch({ delayMs: 0 });
    expect((await b.cache.getOrFetch(tenant, PROVIDER, ok.fetch)).token).toBe('token-1');
  });

  it('other nodes see a non-keygate fetch error as KG_TOKEN_FETCH_FAILED, without its message', async () => {
    const a = node();
    const b = node();
    const tenant = newTenant();
    const failing = countingFetch({ delayMs: 500, fail: new Error('connect ECONNREFUSED 10.0.0.7:443') });
    const first = a.cache.getOrFetch(tenant, PROVIDER, failing.fetch);
    await vi.waitFor(async () => expect(await admin.exists(redisKeys.tokenLock(tenant, PROVIDER))).toBe(1));
    const second = b.cache.getOrFetch(tenant, PROVIDER, failing.fetch);
    await expect(first).rejects.toThrow('connect ECONNREFUSED 10.0.0.7:443');
    await expect(second).rejects.toThrow('the token fetch failed on another keygate node');
    expect(failing.calls).toBe(1);
  });

  it('takes over from a node that died holding the lock once the lock expires', async () => {
    const { cache } = node({ pollIntervalMs: 20 });
    const tenant = newTenant();
    await admin.set(redisKeys.tokenLock(tenant, PROVIDER), 'dead-node:flight', 'PX', 300);
    const counter = countingFetch({ delayMs: 0 });
    const started = Date.now();
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(counter.calls).toBe(1);
  });

  it('gives up with KG_TOKEN_FETCH_FAILED when another node holds the lock past waitTimeoutMs', async () => {
    const { cache } = node({ waitTimeoutMs: 200, pollIntervalMs: 20 });
    const tenant = newTenant();
    await admin.set(redisKeys.tokenLock(tenant, PROVIDER), 'stuck-node:flight', 'PX', 10_000);
    const counter = countingFetch({ delayMs: 0 });
    await expect(cache.getOrFetch(tenant, PROVIDER, counter.fetch)).rejects.toThrow(
      /another keygate node has been fetching this token for more than 200 ms/,
    );
    expect(counter.calls).toBe(0);
  });

  it('two OS processes sharing Redis, 25 concurrent requests each: exactly one fetch', async () => {
    let fetches = 0;
    const server = http.createServer((req, res) => {
      const n = ++fetches;
      req.resume();
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ token: `token-${n}`, expireTime: Date.now() + 3_600_000 }));
      }, 300);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    teardown.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
    const tenant = newTenant();

    const child = fork(
      fileURLToPath(new URL('./two-process.fixture.ts', import.meta.url)),
      [REDIS_TEST_URL, tenant, PROVIDER, tokenUrl, '25'],
      { execArgv: ['--no-node-snapshot'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    teardown.push(() => {
      if (child.exitCode === null) child.kill();
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`fixture exited early with ${code}`))),
    );
    const nextMessage = () =>
      Promise.race([new Promise((resolve) => child.once('message', resolve)), exited]);
    expect(await nextMessage()).toBe('ready');

    const { cache } = node();
    const fetchFromServer = async (): Promise<FetchedToken> =>
      (await (await fetch(tokenUrl, { method: 'POST' })).json()) as FetchedToken;
    const childDone = nextMessage();
    child.send('go');
    const mine = await Promise.all(
      Array.from({ length: 25 }, () => cache.getOrFetch(tenant, PROVIDER, fetchFromServer)),
    );
    const theirs = ((await childDone) as { tokens: string[] }).tokens;

    expect(fetches).toBe(1);
    expect(theirs).toHaveLength(25);
    expect(new Set([...mine.map((r) => r.token), ...theirs])).toEqual(new Set(['token-1']));
  });
});

describe('Redis token cache with Redis down', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    const target = new URL(REDIS_TEST_URL);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('keeps working from this node alone: last known good token, then one direct fetch per node at a time', async () => {
    const errors: unknown[] = [];
    const { redis, cache } = node(
      { redisTimeoutMs: 200, redisRetryAfterMs: 100, onRedisError: (e) => errors.push(e) },
      proxy.url('redis'),
    );
    const tenant = newTenant();
    const fresh = newTenant();
    const counter = countingFetch({ delayMs: 50 });
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');

    proxy.cut();
    await vi.waitFor(() => expect(redis.status).not.toBe('ready'));
    await sleep(1_100); // past the L1 TTL: only the last-known-good path can answer now

    // A token this node already had keeps being served.
    expect((await cache.get(tenant, PROVIDER))?.token).toBe('token-1');
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');
    // A token it never had is fetched directly, once for 50 concurrent callers.
    const results = await Promise.all(
      Array.from({ length: 50 }, () => cache.getOrFetch(fresh, PROVIDER, counter.fetch)),
    );
    expect(counter.calls).toBe(2);
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['token-2']));
    // set() and delete() do not fail either; they act on this node.
    await cache.set(fresh, PROVIDER, 'saved-while-down', Date.now() + 60_000);
    expect((await cache.get(fresh, PROVIDER))?.token).toBe('saved-while-down');
    await cache.delete(fresh, PROVIDER);
    expect(await cache.get(fresh, PROVIDER)).toBeNull();
    expect(errors.length).toBeGreaterThan(0);

    // Redis back: the cluster path works again (the token fetched before the cut is still there).
    proxy.restore();
    await vi.waitFor(() => expect(redis.status).toBe('ready'), { timeout: 5_000 });
    await sleep(150);
    expect(await admin.get(redisKeys.token(tenant, PROVIDER))).toContain('token-1');
    const after = await cache.getOrFetch(fresh, PROVIDER, counter.fetch);
    expect(after.token).toBe('token-3');
    expect(await admin.get(redisKeys.token(fresh, PROVIDER))).toContain('token-3');
  });

  it('a node whose Redis hangs degrades after redisTimeoutMs instead of waiting', async () => {
    const { redis, cache } = node({ redisTimeoutMs: 150, redisRetryAfterMs: 1_000 }, proxy.url('redis'));
    const tenant = newTenant();
    await cache.get(tenant, PROVIDER); // connected
    proxy.hang();
    // Reconnected to a Redis that accepts connections but never answers.
    await vi.waitFor(() => expect(redis.status).toBe('connect'));
    const counter = countingFetch({ delayMs: 0 });
    const started = Date.now();
    expect((await cache.getOrFetch(tenant, PROVIDER, counter.fetch)).token).toBe('token-1');
    expect(Date.now() - started).toBeLessThan(1_000);
    proxy.restore();
  });
});
