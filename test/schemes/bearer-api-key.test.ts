/**
 * scripts-examples/bearer-api-key: the key goes out as RFC 6750 2.1's Authorization: Bearer
 * header (vectors.json is that section's example), the caller's own Authorization (its service
 * token) never reaches the provider, and an API that echoes the key back cannot hand it to the caller.
 */
import { timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { json, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { callProxy, exampleConfig, exampleVectors } from './helpers.ts';

const vectors = exampleVectors<{ apiKey: string; authorization: string }>('bearer-api-key');

describe('bearer-api-key through the proxy', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  let serviceToken: string;

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      const got = Buffer.from(String(req.headers.authorization ?? ''));
      const want = Buffer.from(vectors.authorization);
      if (got.length !== want.length || !timingSafeEqual(got, want))
        return json(res, 401, { error: 'invalid_token' });
      // A careless API that echoes the credential back.
      json(
        res,
        200,
        { ok: true, youSent: String(req.headers.authorization) },
        { 'x-echo-key': vectors.apiKey },
      );
    });
    gw = await startTestGateway();
    ({ serviceToken } = await setUpProvider(
      gw,
      exampleConfig('bearer-api-key', { prefixUrl: upstream.url }),
      {
        ApiKey: vectors.apiKey,
      },
    ));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it("sends Authorization: Bearer <ApiKey> in place of the caller's service token, and masks an echo of it", async () => {
    const reply = await callProxy(gw, serviceToken, 'bearer-api-key', '/v1/resource?id=1');
    expect(reply.status).toBe(200);
    expect(upstream.received.at(-1)!.headers.authorization).toBe(vectors.authorization);
    expect(upstream.received.at(-1)!.rawHeaders.join('\n')).not.toContain(serviceToken);
    expect(reply.text).not.toContain(vectors.apiKey);
    expect(reply.headers.get('x-echo-key')).not.toBe(vectors.apiKey);
  });

  it('without the ApiKey secret the call fails with KG_SECRET_MISSING naming it, and nothing is sent', async () => {
    const before = upstream.received.length;
    const { serviceToken: token } = await setUpProvider(
      gw,
      exampleConfig('bearer-api-key', { prefixUrl: upstream.url }),
    );
    const reply = await callProxy(gw, token, 'bearer-api-key', '/v1/resource');
    expect(reply.status).toBe(500);
    expect(reply.json).toMatchObject({ code: 'KG_SECRET_MISSING' });
    expect(String((reply.json as { detail: string }).detail)).toContain('ApiKey');
    expect(upstream.received.length).toBe(before);
  });
});
