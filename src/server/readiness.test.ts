import { describe, expect, it } from 'vitest';
import { createReadiness } from './readiness.ts';

describe('readiness', () => {
  it('probes at most once per cacheMs, callers in between sharing the result or the run in flight', async () => {
    let clock = 0;
    let calls = 0;
    const readiness = createReadiness(
      {
        database: async () => {
          calls += 1;
        },
      },
      { cacheMs: 1_000, now: () => clock },
    );
    const together = await Promise.all([readiness.check(), readiness.check(), readiness.check()]);
    expect(calls).toBe(1);
    for (const report of together)
      expect(report).toEqual({ ready: true, draining: false, checks: { database: true } });
    clock = 999;
    await readiness.check();
    expect(calls).toBe(1);
    clock = 1_000;
    await readiness.check();
    expect(calls).toBe(2);
  });

  it('reports a failing probe as not ready, naming it', async () => {
    const readiness = createReadiness({
      database: async () => {},
      redis: () => Promise.reject(new Error('reconnecting')),
    });
    expect(await readiness.check()).toEqual({
      ready: false,
      draining: false,
      checks: { database: true, redis: false },
    });
  });

  it('counts a hanging probe as down after timeoutMs, and never starts it again while it hangs', async () => {
    let clock = 0;
    let started = 0;
    let release: () => void = () => {};
    const readiness = createReadiness(
      {
        // The first call hangs until released; later ones answer at once.
        database: () => {
          started += 1;
          if (started > 1) return Promise.resolve();
          return new Promise<void>((resolve) => {
            release = resolve;
          });
        },
      },
      { timeoutMs: 20, cacheMs: 1_000, now: () => clock },
    );
    expect((await readiness.check()).checks).toEqual({ database: false });
    clock += 1_000;
    expect((await readiness.check()).checks).toEqual({ database: false });
    clock += 1_000;
    expect((await readiness.check()).ready).toBe(false);
    expect(started).toBe(1);

    release();
    await new Promise((resolve) => setImmediate(resolve));
    clock += 1_000;
    expect(await readiness.check()).toMatchObject({ ready: true, checks: { database: true } });
    expect(started).toBe(2);
  });

  it('is not ready once draining, whatever the probes say', async () => {
    const readiness = createReadiness({ database: async () => {} });
    expect((await readiness.check()).ready).toBe(true);
    readiness.drain();
    expect(await readiness.check()).toEqual({ ready: false, draining: true, checks: { database: true } });
  });
});
