/**
 * Listings keyed by a user-chosen string come back in the same order on both databases: byte
 * order (as SQLite compares), not MySQL's case-insensitive collation, whole and a page at a time.
 * Route prefixes that differ only by case are distinct routes on both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../../test/helpers/db.ts';
import { CLI_ACTOR } from '../cli/context.ts';
import { createSecretStore } from '../secrets/secret-store.ts';
import { toDbTime } from '../storage/db.ts';
import type { ServiceContext } from './context.ts';
import type { Page, PageRequest } from './paging.ts';
import { listProviders } from './providers.ts';
import { addRoute, listRoutes, removeRoute } from './routes.ts';
import { listSecrets } from './secrets.ts';
import { createTenant, listTenants } from './tenants.ts';

/** Every item, following nextCursor with pages of `limit`. */
async function walk<T>(list: (page: PageRequest) => Promise<Page<T>>, limit: number): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await list(cursor === undefined ? { limit } : { limit, cursor });
    items.push(...page.items);
    if (page.nextCursor === null) return items;
    cursor = page.nextCursor;
  }
  throw new Error('the listing never ended');
}

/** Byte order, as SQLite compares (the strings here are ASCII, so also code unit order). */
const byteOrder = (values: readonly string[]) => [...values].sort();

describe.each(DIALECTS)('listing order on %s', (dialect) => {
  let t: TestDatabase;
  let ctx: ServiceContext;
  let tenant: string;

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
    ctx = {
      db: t.db,
      dialect,
      // Only list() is used, which reads no key.
      secrets: createSecretStore({ db: t.db, keyProvider: {} as never, dataKeyTtlMs: 60_000 }),
      sandbox: {} as never,
      configEvents: { publish: async () => {}, subscribe: () => () => {}, close: async () => {} },
    };
    tenant = (await createTenant(ctx, CLI_ACTOR, { name: 'zz-order' })).id;
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('lists routes by prefix in byte order, keeping prefixes that differ only by case apart', async () => {
    const prefixes = ['/orders', '/Orders', '/ORDERS', '/a_b', '/aab', '/a-b', '/a.b', '/a1', '/Zed', '/~x'];
    for (const prefix of prefixes)
      await addRoute(ctx, CLI_ACTOR, { tenant, prefix, upstream: 'http://up.internal' });
    const list = (page: PageRequest) => listRoutes(ctx, CLI_ACTOR, tenant, page);
    const prefixesOf = (routes: Array<{ prefix: string }>) => routes.map((r) => r.prefix);
    expect(prefixesOf((await list({})).items)).toEqual(byteOrder(prefixes));
    for (const limit of [1, 2, 3]) expect(prefixesOf(await walk(list, limit))).toEqual(byteOrder(prefixes));

    // The same prefix twice is still a conflict; removing one by prefix leaves the others.
    await expect(
      addRoute(ctx, CLI_ACTOR, { tenant, prefix: '/Orders', upstream: 'http://up.internal' }),
    ).rejects.toMatchObject({ code: 'KG_CONFLICT' });
    await removeRoute(ctx, CLI_ACTOR, { tenant, routeId: '/orders' });
    expect(prefixesOf((await list({})).items)).toEqual(byteOrder(prefixes.filter((p) => p !== '/orders')));
  });

  it('lists tenants by name in byte order', async () => {
    const names = ['zz-a_b', 'zz-aab', 'zz-a-b', 'zz-a1', 'zz-a9', 'zz-ab', 'zz_a'];
    for (const name of names) await createTenant(ctx, CLI_ACTOR, { name });
    const all = byteOrder([...names, 'zz-order']);
    const list = (page: PageRequest) => listTenants(ctx, CLI_ACTOR, page);
    expect((await list({})).items.map((x) => x.name)).toEqual(all);
    for (const limit of [1, 2, 3]) expect((await walk(list, limit)).map((x) => x.name)).toEqual(all);
  });

  it('lists providers by name and secrets by provider, then name, in byte order', async () => {
    const providers = ['a_b', 'aab', 'a-b', 'a.b', 'a1', 'ab'];
    const now = toDbTime();
    await t.db
      .insertInto('providers')
      .values(
        providers.map((name, i) => ({
          id: `prv_order_${i}`,
          tenant_id: tenant,
          name,
          active_version: null,
          revision: 0,
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
    const listP = (page: PageRequest) => listProviders(ctx, CLI_ACTOR, tenant, page);
    expect((await listP({})).items.map((p) => p.name)).toEqual(byteOrder(providers));
    for (const limit of [1, 2, 4])
      expect((await walk(listP, limit)).map((p) => p.name)).toEqual(byteOrder(providers));

    const secrets = ['a_b', 'aab', 'a-b'].flatMap((provider) =>
      ['Key', 'key', '_k'].map((name) => `${provider}/${name}`),
    );
    await t.db
      .insertInto('secrets')
      .values(
        secrets.map((address, i) => ({
          id: `sec_order_${i}`,
          tenant_id: tenant,
          provider: address.split('/')[0]!,
          name: address.split('/')[1]!,
          sensitive: 1,
          ciphertext: 'c',
          wrapped_key: 'w',
          kms_key_id: 'k',
          version: 1,
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
    const listS = (page: PageRequest) => listSecrets(ctx, CLI_ACTOR, { tenant, ...page });
    const addresses = (items: Array<{ provider: string; name: string }>) =>
      items.map((s) => `${s.provider}/${s.name}`);
    // No provider here is a prefix of another: the addresses' byte order is by provider, then name.
    expect(addresses((await listS({})).items)).toEqual(byteOrder(secrets));
    for (const limit of [1, 2, 4]) expect(addresses(await walk(listS, limit))).toEqual(byteOrder(secrets));
  });
});
