import { describe, expect, it } from 'vitest';
import { createMemoryNonceStore, type NonceStore } from './nonce/nonce-store.ts';
import { createReplayGuard } from './replay-guard.ts';

describe('createReplayGuard', () => {
  function flakyRedis(): NonceStore & { down: boolean } {
    const inner = createMemoryNonceStore();
    const store = {
      down: false,
      claim: (keyId: string, nonce: string, ttl: number) =>
        store.down ? Promise.reject(new Error('ECONNREFUSED')) : inner.claim(keyId, nonce, ttl),
    };
    return store;
  }

  it('checks nonces in process while Redis is down, and remembers them once it is back', async () => {
    let now = 0;
    const redis = flakyRedis();
    const guard = createReplayGuard({
      redis,
      local: createMemoryNonceStore({ now: () => now }),
      ttlSeconds: 600,
      retryRedisAfterMs: 1000,
      now: () => now,
    });
    expect(await guard.claim('k', 'n1')).toBe(true);
    expect(await guard.claim('k', 'n1')).toBe(false);
    redis.down = true;
    expect(await guard.claim('k', 'n2')).toBe(true);
    expect(await guard.claim('k', 'n2')).toBe(false);
    redis.down = false;
    now = 2000;
    // Redis never saw n2, but this node did.
    expect(await guard.claim('k', 'n2')).toBe(false);
    expect(await guard.claim('k', 'n3')).toBe(true);
    expect(await guard.claim('k', 'n3')).toBe(false);
  });

  it('gives up on a Redis that does not answer', async () => {
    const hanging: NonceStore = { claim: () => new Promise(() => {}) };
    const guard = createReplayGuard({
      redis: hanging,
      local: createMemoryNonceStore(),
      ttlSeconds: 600,
      timeoutMs: 20,
    });
    const started = Date.now();
    expect(await guard.claim('k', 'n')).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
