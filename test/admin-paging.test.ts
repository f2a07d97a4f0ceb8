/**
 * Paging of the admin API's list endpoints, end to end on both databases: `limit` and `cursor`
 * on every list, pages that neither skip nor repeat a row while rows come and go between
 * requests, the limit's default and bounds, and a 400 for a cursor the list did not issue. The
 * services behind them read one page from the database (keyset), and everything when the CLI
 * asks without a limit.
 */
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import type { ServiceContext } from '../src/services/context.ts';
import { createPartnerKey, listPartnerKeys } from '../src/services/partner-keys.ts';
import { applyProviderVersion, listProviderVersions } from '../src/services/providers.ts';
import { addRoute, removeRoute } from '../src/services/routes.ts';
import { setSecret } from '../src/services/secrets.ts';
import { createTenant, listTenants } from '../src/services/tenants.ts';
import { createAdminToken, createServiceToken } from '../src/services/tokens.ts';
import {
  type AdminClient,
  type AdminFixture,
  PROVIDER,
  providerConfig,
  startAdminFixture,
} from './helpers/admin.ts';
import { DIALECTS } from './helpers/db.ts';

const EXTRA_VERSIONS = 52; // with the fixture's first: 53, more than one default page of 50

// biome-ignore lint/suspicious/noExplicitAny: the items of ten different lists, read field by field
type Item = Record<string, any>;

describe.each(DIALECTS)('admin list paging on %s', (dialect) => {
  let f: AdminFixture;
  let api: AdminClient;
  let ctx: ServiceContext;
  let base: string;
  const tenantNames: string[] = [];

  beforeAll(async () => {
    f = await startAdminFixture({ dialect });
    api = f.api;
    ctx = f.gw.services.ctx;
    base = `/admin/v1/tenants/${f.own.name}`;
    const tenant = f.own.id;
    for (let i = 0; i < 7; i++)
      tenantNames.push((await createTenant(ctx, CLI_ACTOR, { name: `pg-${dialect}-${i}` })).name);
    for (let i = 0; i < EXTRA_VERSIONS; i++) {
      await applyProviderVersion(ctx, CLI_ACTOR, {
        tenant,
        draft: true,
        config: providerConfig(f.upstream.url, { timeoutMs: 1000 + i }),
      });
    }
    for (let i = 0; i < 8; i++) await createPartnerKey(ctx, CLI_ACTOR, { tenant, name: `key ${i}` });
    for (const name of ['b-pay', 'c-pay']) {
      await applyProviderVersion(ctx, CLI_ACTOR, {
        tenant,
        config: { ...providerConfig(f.upstream.url), name },
      });
    }
    // Secrets of two providers: a tenant-wide page boundary falls between providers.
    await setSecret(ctx, CLI_ACTOR, { tenant, provider: PROVIDER, name: 'AesKey', value: 'k' });
    await setSecret(ctx, CLI_ACTOR, { tenant, provider: 'b-pay', name: 'AppKey', value: 'k' });
    for (let i = 0; i < 3; i++) await createServiceToken(ctx, CLI_ACTOR, { tenant, name: `svc ${i}` });
    for (const prefix of ['/a', '/b', '/c', '/d', '/e'])
      await addRoute(ctx, CLI_ACTOR, { tenant, prefix, upstream: f.upstream.url });
    for (let i = 0; i < 2; i++)
      await createAdminToken(ctx, CLI_ACTOR, { role: 'gateway_admin', name: `gw ${i}` });
  });

  afterAll(async () => {
    await f?.close();
  });

  /** Every list endpoint, with what identifies an item and how the list is ordered. */
  const lists = (): Array<[string, string, (item: Item) => string | number, 'asc' | 'desc']> => [
    ['tenants', '/admin/v1/tenants', (t) => t.name, 'asc'],
    ['providers', `${base}/providers`, (p) => p.name, 'asc'],
    ['provider versions', `${base}/providers/${PROVIDER}/versions`, (v) => v.version, 'desc'],
    ['tenant secrets', `${base}/secrets`, (s) => `${s.provider}/${s.name}`, 'asc'],
    ['provider secrets', `${base}/providers/${PROVIDER}/secrets`, (s) => s.name, 'asc'],
    ['members', `${base}/members`, (m) => m.id, 'asc'],
    ['gateway admin tokens', '/admin/v1/admin-tokens', (t) => t.id, 'asc'],
    ['service tokens', `${base}/service-tokens`, (t) => t.id, 'asc'],
    ['partner keys', `${base}/partner-keys`, (k) => k.keyId, 'asc'],
    ['routes', `${base}/routes`, (r) => r.prefix, 'asc'],
  ];

  /** One page; fails unless it is a 200 with the page shape. */
  async function page(path: string, query: string): Promise<{ items: Item[]; nextCursor: string | null }> {
    const res = await api.get(`${path}?${query}`);
    expect(res.status, `${path}?${query}: ${res.text}`).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
    return res.body;
  }

  /** Follows nextCursor to the last page; `between` runs after each page but the last. */
  async function walk(path: string, limit: number, between?: (pageNo: number) => Promise<void>) {
    const items: Item[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const p = await page(path, `limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      pages++;
      if (p.nextCursor !== null) {
        expect(p.items, `a page before the last is full (${path})`).toHaveLength(limit);
        await between?.(pages);
      } else {
        expect(p.items.length).toBeLessThanOrEqual(limit);
      }
      items.push(...p.items);
      cursor = p.nextCursor;
      expect(pages).toBeLessThan(200);
    } while (cursor !== null);
    return { items, pages };
  }

  async function expectCursorRefused(path: string, cursor: string): Promise<void> {
    const res = await api.get(`${path}?cursor=${encodeURIComponent(cursor)}`);
    expect({ path, cursor, status: res.status, code: res.body?.code }).toEqual({
      path,
      cursor,
      status: 400,
      code: 'KG_VALIDATION_FAILED',
    });
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.errors).toEqual([expect.objectContaining({ path: 'cursor' })]);
  }

  it('pages every list in its order: all rows once, full pages, null nextCursor on the last', async () => {
    for (const [name, path, keyOf, order] of lists()) {
      const all = await page(path, 'limit=500');
      expect(all.nextCursor, name).toBeNull();
      expect(all.items.length, name).toBeGreaterThan(2);
      const keys = all.items.map(keyOf);
      const sorted = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(keys, `${name} is ordered`).toEqual(order === 'asc' ? sorted : sorted.reverse());
      expect(new Set(keys).size, `${name} keys are unique`).toBe(keys.length);

      const walked = await walk(path, 2);
      expect(walked.items, name).toEqual(all.items);
      expect(walked.pages, name).toBe(Math.ceil(all.items.length / 2));
      // A last page that is exactly full still says it is the last.
      expect((await page(path, `limit=${all.items.length}`)).nextCursor, name).toBeNull();
    }
  });

  it('declares limit, cursor and nextCursor in the OpenAPI document for every list', async () => {
    const doc = (await api.get('/admin/openapi.json', { token: null })).body;
    for (const [name, path] of [...lists(), ['admin audit', `${base}/admin-audit`]] as Array<
      [string, string]
    >) {
      const template = path.replace(f.own.name, '{tenant}').replace(PROVIDER, '{provider}');
      const op = doc.paths[template]?.get;
      expect(op, name).toBeDefined();
      const query = op.parameters.filter((p: { in: string }) => p.in === 'query');
      expect(
        query.map((p: { name: string }) => p.name),
        name,
      ).toEqual(expect.arrayContaining(['limit', 'cursor']));
      expect(query.find((p: { name: string }) => p.name === 'limit').schema, name).toMatchObject({
        minimum: 1,
        maximum: 500,
        default: 50,
      });
      const body = op.responses['200'].content['application/json'].schema;
      expect(Object.keys(body.properties).sort(), name).toEqual(['items', 'nextCursor']);
      expect(op.responses['400'], name).toBeDefined();
    }
  });

  it('versions: 50 a page by default, newest first, a version drafted while paging is not repeated', async () => {
    const all = (await page(`${base}/providers/${PROVIDER}/versions`, 'limit=500')).items;
    expect(all.map((v) => v.version)).toEqual(
      Array.from({ length: EXTRA_VERSIONS + 1 }, (_, i) => EXTRA_VERSIONS + 1 - i),
    );
    const first = await api.get(`${base}/providers/${PROVIDER}/versions`);
    expect(first.body.items).toEqual(all.slice(0, 50));
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const rest = await page(`${base}/providers/${PROVIDER}/versions`, `cursor=${first.body.nextCursor}`);
    expect(rest).toEqual({ items: all.slice(50), nextCursor: null });

    // New versions sort before the cursor: the walk sees exactly the versions that were there.
    const walked = await walk(`${base}/providers/${PROVIDER}/versions`, 7, async () => {
      await applyProviderVersion(ctx, CLI_ACTOR, {
        tenant: f.own.id,
        draft: true,
        config: providerConfig(f.upstream.url),
      });
    });
    expect(walked.items).toEqual(all);
  });

  it('tenants: a tenant added before the cursor is not repeated, one added after it is not skipped', async () => {
    const all = (await page('/admin/v1/tenants', 'limit=500')).items;
    expect(all.map((t) => t.name)).toEqual(
      expect.arrayContaining([f.own.name, f.other.name, ...tenantNames]),
    );
    const early = `aa-${dialect}`;
    const late = `zz-${dialect}`;
    const walked = await walk('/admin/v1/tenants', 3, async (pageNo) => {
      if (pageNo !== 1) return;
      await createTenant(ctx, CLI_ACTOR, { name: early });
      await createTenant(ctx, CLI_ACTOR, { name: late });
    });
    const names = walked.items.map((t) => t.name);
    expect(names).toEqual([...all.map((t) => t.name), late]);
    expect(names).not.toContain(early);
  });

  it('tenants: a tenant role pages through its own tenant only', async () => {
    const res = await api.get('/admin/v1/tenants?limit=1', { token: f.own.developerToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [expect.objectContaining({ id: f.own.id })], nextCursor: null });
  });

  it('partner keys: a key created while paging comes last, every earlier key exactly once', async () => {
    const path = `${base}/partner-keys`;
    const all = (await page(path, 'limit=500')).items;
    expect(all.length).toBeGreaterThanOrEqual(8);
    let added = '';
    const walked = await walk(path, 3, async (pageNo) => {
      if (pageNo === 1)
        added = (await createPartnerKey(ctx, CLI_ACTOR, { tenant: f.own.id, name: 'late' })).keyId;
    });
    expect(walked.items.map((k) => k.keyId)).toEqual([...all.map((k) => k.keyId), added]);
    // Each key carries its own live secrets, also when read a page at a time.
    expect(walked.items.every((k) => k.liveSecretVersions.length === 1)).toBe(true);
  });

  it('routes: removing a row already seen does not make the next page skip one', async () => {
    const path = `${base}/routes`;
    const all = (await page(path, 'limit=500')).items;
    const walked = await walk(path, 2, async (pageNo) => {
      if (pageNo === 1) await removeRoute(ctx, CLI_ACTOR, { tenant: f.own.id, routeId: all[0]!.id });
    });
    expect(walked.items).toEqual(all);
  });

  it('limit: 1 to 500, anything else is a 400 on limit', async () => {
    for (const [name, path] of lists()) {
      for (const limit of ['1', '500'])
        expect((await api.get(`${path}?limit=${limit}`)).status, name).toBe(200);
      for (const limit of ['0', '501', '-1', '1.5', 'ten', '', '0x10', '1e2', '%2010']) {
        const res = await api.get(`${path}?limit=${limit}`);
        expect({ name, limit, status: res.status, code: res.body?.code }).toEqual({
          name,
          limit,
          status: 400,
          code: 'KG_VALIDATION_FAILED',
        });
        expect(res.body.errors).toEqual([expect.objectContaining({ path: 'limit', in: 'query' })]);
      }
    }
  });

  it('refuses a cursor that does not decode or that another list issued, with 400 on cursor', async () => {
    const cursorOf = async (path: string) => (await page(path, 'limit=1')).nextCursor!;
    const tenantsCursor = await cursorOf('/admin/v1/tenants');
    const keysCursor = await cursorOf(`${base}/partner-keys`);
    const auditCursor = await cursorOf(`${base}/admin-audit`);
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const garbage = ['x', 'bm90LWpzb24', encode(['tenants']), encode({ after: 'a' }), encode(['a'])];
    const endpoints = [...lists().map(([, path]) => path), `${base}/admin-audit`, `${base}/audit-log`];
    for (const path of endpoints) {
      for (const cursor of garbage) await expectCursorRefused(path, cursor);
      for (const foreign of [tenantsCursor, keysCursor, auditCursor]) {
        const own =
          foreign === tenantsCursor
            ? '/admin/v1/tenants'
            : foreign === keysCursor
              ? `${base}/partner-keys`
              : `${base}/admin-audit`;
        if (path !== own) await expectCursorRefused(path, foreign);
      }
    }
    // The right list, but a key that cannot be one of its rows.
    await expectCursorRefused(
      `${base}/providers/${PROVIDER}/versions`,
      encode(['provider-versions', 'latest']),
    );
    await expectCursorRefused(`${base}/providers/${PROVIDER}/versions`, encode(['provider-versions', '1e3']));
    // A cursor longer than any this API issues is refused by the schema.
    const long = await api.get(`/admin/v1/tenants?cursor=${'a'.repeat(501)}`);
    expect(long.status).toBe(400);
    expect(long.body.errors).toEqual([expect.objectContaining({ path: 'cursor', in: 'query' })]);
  });

  it('the services read one page from the database, and every row for the CLI (no limit)', async () => {
    const reads: number[] = [];
    const counting: KyselyPlugin = {
      transformQuery: ({ node }) => node,
      transformResult: async ({ result }) => {
        reads.push(result.rows.length);
        return result;
      },
    };
    const paged = { ...ctx, db: ctx.db.withPlugin(counting) };
    const largestRead = async (run: () => Promise<unknown>) => {
      reads.length = 0;
      await run();
      return Math.max(...reads);
    };

    const versions = await listProviderVersions(ctx, CLI_ACTOR, f.own.id, PROVIDER);
    expect(versions.items.length).toBeGreaterThan(EXTRA_VERSIONS);
    expect(versions.nextCursor).toBeNull();
    expect(
      await largestRead(() => listProviderVersions(paged, CLI_ACTOR, f.own.id, PROVIDER, { limit: 5 })),
    ).toBe(6);
    const second = await listProviderVersions(ctx, CLI_ACTOR, f.own.id, PROVIDER, { limit: 5 });
    expect(
      await largestRead(() =>
        listProviderVersions(paged, CLI_ACTOR, f.own.id, PROVIDER, { limit: 5, cursor: second.nextCursor! }),
      ),
    ).toBe(6);

    const tenants = await listTenants(ctx, CLI_ACTOR);
    expect(tenants.items.length).toBeGreaterThan(9);
    expect(tenants.nextCursor).toBeNull();
    expect(await largestRead(() => listTenants(paged, CLI_ACTOR, { limit: 2 }))).toBe(3);

    const keys = await listPartnerKeys(ctx, CLI_ACTOR, f.own.id);
    expect(keys.items.length).toBeGreaterThan(8);
    expect(keys.nextCursor).toBeNull();
    expect(await largestRead(() => listPartnerKeys(paged, CLI_ACTOR, f.own.id, { limit: 3 }))).toBe(4);
  });
});
