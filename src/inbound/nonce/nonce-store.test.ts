import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_TEST_URL } from '../../../test/helpers/db.ts';
import { redisKeys } from '../../storage/redis-keys.ts';
import { createMemoryNonceStore, createRedisNonceStore, type NonceStore } from './nonce-store.ts';

const redis = new Redis(REDIS_TEST_URL);
afterAll(() => redis.quit());

// The same behaviour is required of both stores; only expiry is tested per store, with its own clock.
describe.each([
  ['redis', () => createRedisNonceStore(redis)],
  ['memory', () => createMemoryNonceStore()],
] as Array<[string, () => NonceStore]>)('%s nonce store', (_, createStore) => {
  it('accepts a nonce once per key', async () => {
    const store = createStore();
    const keyId = `test-${randomUUID()}`;
    expect(await store.claim(keyId, 'nonce-aaaaaaaaaaaa', 60)).toBe(true);
    expect(await store.claim(keyId, 'nonce-aaaaaaaaaaaa', 60)).toBe(false);
    expect(await store.claim(keyId, 'nonce-bbbbbbbbbbbb', 60)).toBe(true);
    expect(await store.claim(`${keyId}-other`, 'nonce-aaaaaaaaaaaa', 60)).toBe(true);
  });

  it('lets exactly one of many concurrent claims of one nonce win', async () => {
    const store = createStore();
    const keyId = `test-${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, () => store.claim(keyId, 'nonce-racing-000000', 60)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('refuses a TTL that is not positive', async () => {
    await expect(createStore().claim('k', 'nonce-cccccccccccc', 0)).rejects.toThrow(RangeError);
  });
});

describe('redis nonce store', () => {
  it('stores the nonce under the key layout with the TTL asked for', async () => {
    const keyId = `test-${randomUUID()}`;
    await createRedisNonceStore(redis).claim(keyId, 'nonce-dddddddddddd', 600);
    const ttl = await redis.ttl(redisKeys.nonce(keyId, 'nonce-dddddddddddd'));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });
});

describe('memory nonce store', () => {
  it('forgets a nonce once its TTL has passed', async () => {
    let now = 1_000_000;
    const store = createMemoryNonceStore({ now: () => now });
    expect(await store.claim('k', 'nonce-eeeeeeeeeeee', 10)).toBe(true);
    now += 9_999;
    expect(await store.claim('k', 'nonce-eeeeeeeeeeee', 10)).toBe(false);
    now += 1;
    expect(await store.claim('k', 'nonce-eeeeeeeeeeee', 10)).toBe(true);
  });

  it('stays within its bound and refuses new nonces rather than forget live ones', async () => {
    let now = 0;
    const store = createMemoryNonceStore({ maxEntries: 3, now: () => now });
    for (const nonce of ['n1', 'n2', 'n3']) expect(await store.claim('k', nonce, 10)).toBe(true);
    await expect(store.claim('k', 'n4', 10)).rejects.toMatchObject({ code: 'KG_NOT_READY' });
    // A replay is still recognised while full.
    expect(await store.claim('k', 'n1', 10)).toBe(false);
    now += 10_000;
    expect(await store.claim('k', 'n4', 10)).toBe(true);
    expect(await store.claim('k', 'n1', 10)).toBe(true);
  });

  it('finds expired entries behind a longer-lived one when full', async () => {
    let now = 0;
    const store = createMemoryNonceStore({ maxEntries: 2, now: () => now });
    await store.claim('k', 'long-lived', 1000);
    await store.claim('k', 'short-lived', 1);
    now += 2_000;
    expect(await store.claim('k', 'new', 1)).toBe(true);
  });
});
