import { describe, expect, it } from 'vitest';
import { createLkgCache } from './lkg-cache.ts';

function controllableLoader() {
  let calls = 0;
  let fail = false;
  let value = 'v1';
  return {
    load: async (key: string) => {
      calls++;
      await Promise.resolve();
      if (fail) throw new Error('database unreachable');
      return key === 'missing' ? undefined : `${key}:${value}`;
    },
    set: (v: string) => (value = v),
    failing: (f: boolean) => (fail = f),
    calls: () => calls,
  };
}

describe('createLkgCache', () => {
  it('loads once for concurrent first reads and caches "nothing there" too', async () => {
    const loader = controllableLoader();
    const cache = createLkgCache({ load: loader.load, ttlMs: 1000, what: 'thing' });
    const values = await Promise.all([cache.get('a'), cache.get('a'), cache.get('a')]);
    expect(values).toEqual(['a:v1', 'a:v1', 'a:v1']);
    expect(await cache.get('missing')).toBeUndefined();
    expect(await cache.get('missing')).toBeUndefined();
    expect(loader.calls()).toBe(2);
  });

  it('refreshes in the background after the TTL and keeps the last-known-good copy while loads fail', async () => {
    let now = 0;
    const loader = controllableLoader();
    const cache = createLkgCache({ load: loader.load, ttlMs: 1000, what: 'thing', now: () => now });
    expect(await cache.get('a')).toBe('a:v1');
    loader.set('v2');
    now = 1500;
    expect(await cache.get('a')).toBe('a:v1'); // served at once, refresh started
    await new Promise((r) => setTimeout(r, 5));
    expect(await cache.get('a')).toBe('a:v2');

    loader.failing(true);
    now = 3000;
    expect(await cache.get('a')).toBe('a:v2');
    await new Promise((r) => setTimeout(r, 5));
    expect(await cache.get('a')).toBe('a:v2');
    cache.invalidate('a');
    expect(await cache.get('a')).toBe('a:v2'); // the reload failed: last-known-good
  });

  it('fails with 503 KG_NOT_READY for a value never loaded, and tries again next time', async () => {
    const loader = controllableLoader();
    loader.failing(true);
    const cache = createLkgCache({ load: loader.load, ttlMs: 1000, what: 'partner key' });
    await expect(cache.get('a')).rejects.toMatchObject({ code: 'KG_NOT_READY', status: 503 });
    loader.failing(false);
    expect(await cache.get('a')).toBe('a:v1');
  });

  it('invalidate makes the next read wait for the new value', async () => {
    const loader = controllableLoader();
    const cache = createLkgCache({ load: loader.load, ttlMs: 60_000, what: 'thing' });
    expect(await cache.get('a')).toBe('a:v1');
    loader.set('v2');
    cache.invalidate('a');
    expect(await cache.get('a')).toBe('a:v2');
  });

  it('stays within maxEntries', async () => {
    const loader = controllableLoader();
    const cache = createLkgCache({ load: loader.load, ttlMs: 60_000, maxEntries: 2, what: 'thing' });
    for (const k of ['a', 'b', 'c']) await cache.get(k);
    expect(loader.calls()).toBe(3);
    await cache.get('c');
    expect(loader.calls()).toBe(3);
    await cache.get('a'); // evicted: loaded again
    expect(loader.calls()).toBe(4);
  });

  it('names each key it evicts to onEvict, and passes no load of an evicted entry to onStore', async () => {
    const events: string[] = [];
    let release = () => {};
    const cache = createLkgCache({
      load: async (key: string) => {
        if (key === 'slow') await new Promise<void>((resolve) => (release = resolve));
        return `${key}:v1`;
      },
      ttlMs: 60_000,
      maxEntries: 2,
      what: 'thing',
      onStore: (key) => events.push(`store ${key}`),
      onEvict: (key) => events.push(`evict ${key}`),
    });
    for (const k of ['a', 'b', 'c']) await cache.get(k);
    expect(events).toEqual(['store a', 'store b', 'evict a', 'store c']);

    // Evicted while its first load runs: the callers get the value, but the cache keeps nothing.
    const slow = cache.get('slow');
    for (const k of ['d', 'e']) await cache.get(k);
    release();
    expect(await slow).toBe('slow:v1');
    expect(events.slice(4)).toEqual(['evict b', 'evict c', 'store d', 'evict slow', 'store e']);
  });
});
