/**
 * The same admin write sent many times at once, on both databases: each gets a clear answer (a
 * success, or 409), never a 500 from a duplicate key or a deadlock lost inside MySQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/helpers/db.ts';
import { startTestGateway, type TestGateway } from '../../test/helpers/gateway.ts';
import { CLI_ACTOR } from '../cli/context.ts';
import { applyProviderVersion } from './providers.ts';
import { addRoute } from './routes.ts';
import { setSecret } from './secrets.ts';
import { createTenant } from './tenants.ts';

const N = 8;

/** Every call's outcome: 'ok' or the error code it failed with. */
async function outcomes(calls: Array<() => Promise<unknown>>): Promise<string[]> {
  return Promise.all(
    calls.map((call) =>
      call().then(
        () => 'ok',
        (err: { code?: string }) => err.code ?? String(err),
      ),
    ),
  );
}

describe.each(DIALECTS)('concurrent admin writes on %s', (dialect) => {
  let gw: TestGateway;
  let tenant: string;
  beforeAll(async () => {
    gw = await startTestGateway({ dialect, roles: ['admin'] });
    tenant = (await createTenant(gw.services.ctx, CLI_ACTOR, { name: `cw-${dialect}` })).id;
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('versions of a new provider all succeed, numbered 1 to N', async () => {
    const results = await Promise.all(
      Array.from({ length: N }, () =>
        applyProviderVersion(gw.services.ctx, CLI_ACTOR, {
          tenant,
          draft: true,
          config: { name: 'racy', mode: 'simple', prefixUrl: 'http://x.example' },
        }),
      ),
    );
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(
      Array.from({ length: N }, (_, i) => i + 1),
    );
  });

  it("a secret's first writes all succeed: one creates it, the others rotate it", async () => {
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        setSecret(gw.services.ctx, CLI_ACTOR, { tenant, provider: 'racy', name: 'S1', value: `v${i}` }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.version)).size).toBeGreaterThan(1);
  });

  it('the same route or tenant created at once: one success, 409 for the rest', async () => {
    const routes = await outcomes(
      Array.from(
        { length: N },
        () => () =>
          addRoute(gw.services.ctx, CLI_ACTOR, { tenant, prefix: '/orders', upstream: 'http://o.internal' }),
      ),
    );
    expect(routes.filter((o) => o === 'ok')).toHaveLength(1);
    expect(routes.filter((o) => o === 'KG_CONFLICT')).toHaveLength(N - 1);
    const tenants = await outcomes(
      Array.from(
        { length: N },
        () => () => createTenant(gw.services.ctx, CLI_ACTOR, { name: `dup-${dialect}` }),
      ),
    );
    expect(tenants.filter((o) => o === 'ok')).toHaveLength(1);
    expect(tenants.filter((o) => o === 'KG_CONFLICT')).toHaveLength(N - 1);
  });

  it('refuses an upstream longer than its column and a key list past the limit, naming few ids', async () => {
    const long = await outcomes([
      () =>
        addRoute(gw.services.ctx, CLI_ACTOR, {
          tenant,
          prefix: '/long',
          upstream: `http://o.internal/${'a'.repeat(3000)}`,
        }),
    ]);
    expect(long).toEqual(['KG_VALIDATION_FAILED']);
    const many = Array.from({ length: 501 }, (_, i) => `pk_${String(i).padStart(26, '0')}`);
    await expect(
      addRoute(gw.services.ctx, CLI_ACTOR, {
        tenant,
        prefix: '/many',
        upstream: 'http://o.internal',
        keyIds: many,
      }),
    ).rejects.toMatchObject({
      code: 'KG_VALIDATION_FAILED',
      message: expect.stringContaining('at most 500 keys'),
    });
    const unknown = await addRoute(gw.services.ctx, CLI_ACTOR, {
      tenant,
      prefix: '/unknown',
      upstream: 'http://o.internal',
      keyIds: many.slice(0, 40),
    }).catch((err: Error) => err.message);
    expect(unknown).toContain('and 30 more');
  });
});
