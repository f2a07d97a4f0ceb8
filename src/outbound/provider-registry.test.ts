/** The provider registry's handling of names callers make up: no lookup for impossible names, a bounded not-found cache. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { createLogger } from '../logger.ts';
import type { Sandbox } from '../sandbox/index.ts';
import { createLocalConfigEvents } from '../storage/config-events.ts';
import type { Db } from '../storage/db.ts';
import { createProviderRegistry } from './provider-registry.ts';

describe('provider registry: names callers make up', () => {
  let tdb: TestDatabase;
  let queries = 0;
  let db: Db;

  beforeAll(async () => {
    tdb = await createTestDatabase('sqlite');
    db = tdb.db.withPlugin({
      transformQuery: (args) => {
        queries += 1;
        return args.node;
      },
      transformResult: async (args) => args.result,
    });
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  function registry(maxMissing: number) {
    return createProviderRegistry({
      db,
      // Not-found lookups never compile anything.
      sandbox: {} as Sandbox,
      configEvents: createLocalConfigEvents(),
      pollMs: 60_000,
      logger: createLogger('silent'),
      maxMissing,
    });
  }

  it('answers a name no provider can have with 404, without a lookup', async () => {
    const providers = registry(10);
    const before = queries;
    for (const name of ['x'.repeat(6000), 'Upper', '"\n}', '.dot']) {
      await expect(providers.get('t1', name)).rejects.toMatchObject({ code: 'KG_PROVIDER_NOT_FOUND' });
    }
    expect(queries).toBe(before);
    providers.close();
  });

  it('remembers at most maxMissing unknown names, forgetting the oldest', async () => {
    const providers = registry(3);
    const lookups = async (name: string) => {
      const before = queries;
      await expect(providers.get('t1', name)).rejects.toMatchObject({ code: 'KG_PROVIDER_NOT_FOUND' });
      return queries - before;
    };
    for (const name of ['a1', 'a2', 'a3', 'a4']) expect(await lookups(name)).toBeGreaterThan(0);
    // a2..a4 are remembered; a1 was forgotten when a4 came.
    expect(await lookups('a4')).toBe(0);
    expect(await lookups('a2')).toBe(0);
    expect(await lookups('a1')).toBeGreaterThan(0);
    expect(providers.isKnownName('a1')).toBe(false);
    providers.close();
  });
});
