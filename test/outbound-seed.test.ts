/**
 * The seed scheme end to end: the article's two scripts, unmodified, through the real proxy
 * against a strict simulator of the provider (token request, AES payload, signature checked).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeedProvider, startSeedProvider } from '../src/dev/seed-provider.ts';
import { DIALECTS } from './helpers/db.ts';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';

const seedRequest = readFileSync(new URL('../scripts-examples/seed/request.js', import.meta.url), 'utf8');
const seedResponse = readFileSync(new URL('../scripts-examples/seed/response.js', import.meta.url), 'utf8');
const secrets = { AppKey: 'app-key-123', AesKey: '0123456789abcdef', AesIV: 'fedcba9876543210' };

function seedConfig(sim: SeedProvider, name = 'seed-pay') {
  return {
    name,
    mode: 'script',
    prefixUrl: sim.url,
    tokenUrl: `${sim.url}/oauth/token`,
    request: seedRequest,
    response: seedResponse,
  };
}

async function call(gw: TestGateway, token: string, provider: string, data: string) {
  const res = await fetch(`${gw.outboundUrl}/v1/proxy/${provider}/api/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ data, timestamp: Math.floor(Date.now() / 1000) }),
  });
  return { status: res.status, body: (await res.json()) as { code: number; data?: string; msg?: string } };
}

describe.each(DIALECTS)('seed scheme through the proxy (%s)', (dialect) => {
  let gw: TestGateway;
  let sim: SeedProvider;
  let serviceToken: string;

  beforeAll(async () => {
    sim = await startSeedProvider({
      appKey: secrets.AppKey,
      aesKey: secrets.AesKey,
      aesIv: secrets.AesIV,
      tokenDelayMs: 50,
    });
    gw = await startTestGateway({ dialect });
    ({ serviceToken } = await setUpProvider(gw, seedConfig(sim), secrets, { notSensitive: ['AppKey'] }));
  });
  afterAll(async () => {
    await gw?.close();
    await sim?.close();
  });

  it('50 concurrent first requests fetch exactly one token, and every answer is decrypted', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => call(gw, serviceToken, 'seed-pay', `order ${i}`)),
    );
    expect(sim.stats.rejected).toEqual([]);
    expect(sim.stats.tokenRequests).toBe(1);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body.code).toBe(0);
      expect(JSON.parse(r.body.data!)).toEqual({ echo: `order ${i}`, method: 'POST', path: '/api/orders' });
    });
  });

  it('reports the token fetch, the script runs and the loaded version in /metrics', async () => {
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(text).toMatch(/keygate_token_fetches_total\{provider="seed-pay",outcome="ok"\} 1\n/);
    expect(text).toMatch(/keygate_provider_config_version\{tenant="[^"]+",provider="seed-pay"\} 1\n/);
    expect(text).toMatch(/keygate_script_duration_seconds_count\{provider="seed-pay",kind="request"\} [1-9]/);
    expect(text).toMatch(
      /keygate_http_requests_total\{listener="outbound",provider="seed-pay",status="200"\} 50\n/,
    );
  });

  it('after a provider 401 handled by token_delete(), the next request fetches a new token', async () => {
    const before = sim.stats.tokenRequests;
    sim.expireAllTokens();
    const rejected = await call(gw, serviceToken, 'seed-pay', 'stale');
    expect(rejected.body.code).toBe(401);
    expect(sim.stats.tokenRequests).toBe(before);
    const next = await call(gw, serviceToken, 'seed-pay', 'fresh');
    expect(next.body.code).toBe(0);
    expect(JSON.parse(next.body.data!).echo).toBe('fresh');
    expect(sim.stats.tokenRequests).toBe(before + 1);
  });

  it('answers a body that is not JSON with 400, sends nothing, and fails no other caller of a token flight', async () => {
    const send = (token: string, provider: string, body: string) =>
      fetch(`${gw.outboundUrl}/v1/proxy/${provider}/api/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
    const expectBadJson = async (res: Response) => {
      expect(res.status).toBe(400);
      expect(res.headers.get('keygate-error')).toBe('KG_BAD_REQUEST');
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('KG_BAD_REQUEST');
      expect(problem.detail).toMatch(/^request body is not valid JSON: /);
    };

    // A token is cached: the body is first parsed inside the isolate.
    const apiBefore = sim.stats.apiRequests;
    const tokensBefore = sim.stats.tokenRequests;
    await expectBadJson(await send(serviceToken, 'seed-pay', '{"data": "x",'));
    expect(sim.stats.apiRequests).toBe(apiBefore);
    expect(sim.stats.tokenRequests).toBe(tokensBefore);

    // No token yet: the first callers share one token flight, and the bad body is not in it.
    const fresh = await setUpProvider(gw, seedConfig(sim, 'seed-pay-flight'), secrets, {
      notSensitive: ['AppKey'],
    });
    const [bad, ...good] = await Promise.all([
      send(fresh.serviceToken, 'seed-pay-flight', '[1, 2'),
      ...Array.from({ length: 5 }, (_, i) => call(gw, fresh.serviceToken, 'seed-pay-flight', `flight ${i}`)),
    ]);
    await expectBadJson(bad as Response);
    for (const r of good as Array<Awaited<ReturnType<typeof call>>>) {
      expect(r.status).toBe(200);
      expect(r.body.code).toBe(0);
    }
    expect(sim.stats.tokenRequests).toBe(tokensBefore + 1);
    expect(sim.stats.apiRequests).toBe(apiBefore + 5);
    expect(sim.stats.rejected).toEqual([]);
  });
});

describe('expireTime forms', () => {
  it.each(['seconds', 'milliseconds', 'iso'] as const)(
    'accepts expireTime as %s and reuses the token',
    async (format) => {
      const sim = await startSeedProvider({
        appKey: secrets.AppKey,
        aesKey: secrets.AesKey,
        aesIv: secrets.AesIV,
        expireTimeFormat: format,
      });
      const gw = await startTestGateway();
      try {
        const { serviceToken } = await setUpProvider(gw, seedConfig(sim), secrets);
        expect((await call(gw, serviceToken, 'seed-pay', 'a')).body.code).toBe(0);
        expect((await call(gw, serviceToken, 'seed-pay', 'b')).body.code).toBe(0);
        expect(sim.stats.tokenRequests).toBe(1);
      } finally {
        await gw.close();
        await sim.close();
      }
    },
  );
});
