/**
 * The inbound gateway end to end: a real keygate (`--roles inbound`) on MariaDB and Redis, real
 * upstreams on port 0, partner keys and routes made through the services and the CLI.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { createSignedFetch } from '../src/client/index.ts';
import { canonicalString, sha256Hex } from '../src/inbound/signature/canonical.ts';
import {
  listPartnerKeys,
  retirePartnerSecret,
  revokePartnerKey,
  rotatePartnerKey,
  setPartnerKeyScopes,
} from '../src/services/partner-keys.ts';
import { addRoute } from '../src/services/routes.ts';
import type { AuditLogRow } from '../src/storage/schema.ts';
import { runKeygateInProcess } from './helpers/cli.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type PartnerKeyCredentials,
  type SentResponse,
  send,
  sendRaw,
  signExactly,
  waitFor,
  waitForAuditRow,
} from './helpers/inbound.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

const MAX_BODY = 64 * 1024;
const AUDIT_CAP = 1024;

let gw: TestGateway;
let upstream: TestUpstream;
let tenantId: string;
let key: PartnerKeyCredentials;
/** Every secret handed out in this file, to prove none of them leaks. */
const secrets: string[] = [];

beforeAll(async () => {
  gw = await startTestGateway({
    dialect: 'mysql',
    redis: true,
    roles: ['inbound'],
    env: {
      KEYGATE_INBOUND_MAX_BODY_BYTES: String(MAX_BODY),
      KEYGATE_AUDIT_BODY_CAP_BYTES: String(AUDIT_CAP),
    },
  });
  upstream = await startUpstream(async (req, res) => {
    if (req.url.startsWith('/slow')) return; // never answers
    if (req.url.startsWith('/hop')) {
      res.writeHead(201, {
        connection: 'x-private',
        'x-private': 'p',
        'keep-alive': 'timeout=1',
        'x-kept': 'k',
      });
      res.end('created');
      return;
    }
    json(res, 200, {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: req.body.toString('utf8'),
    });
  });
  tenantId = await createTestTenant(gw.services.ctx);
  key = await createTestKey(gw.services.ctx, tenantId, { rate: 1000, burst: 1000 });
  secrets.push(key.secret);
  await createTestRoute(gw.services.ctx, tenantId, '/orders', upstream.url);
  await createTestRoute(gw.services.ctx, tenantId, '/orders/archive', `${upstream.url}/base`);
  await createTestRoute(gw.services.ctx, tenantId, '/closed', upstream.url, { keyIds: [] });
  await createTestRoute(gw.services.ctx, tenantId, '/slow', upstream.url, { timeoutMs: 300 });
  await createTestRoute(gw.services.ctx, tenantId, '/down', 'http://127.0.0.1:1');
  await createTestRoute(gw.services.ctx, tenantId, '/hop', upstream.url);
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const call = (pathAndQuery: string, opts: Parameters<typeof send>[2] = {}) =>
  send(gw.inboundUrl, pathAndQuery, { key, ...opts });

function expectProblem(res: SentResponse, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json');
  expect(res.headers['keygate-error']).toBe(code);
  const body = res.json<{ code: string; status: number; requestId: string; type: string }>();
  expect(body).toMatchObject({ code, status, requestId: res.headers['x-request-id'] });
  return body;
}

const auditRow = (requestId: unknown): Promise<AuditLogRow> => waitForAuditRow(gw.database.db, requestId);

describe('a signed request', () => {
  it('is forwarded with the path unchanged, partner credentials stripped, request id and key id added', async () => {
    const res = await sendRaw(gw.inboundUrl, '/orders/a%2Fb/7?b=2&a=1', {
      key,
      headers: [
        ['X-Partner-Trace', 't-1'],
        ['X-Request-Id', 'partner-chosen'],
        ['X-Partner-Key-Id', 'spoofed'],
        ['Connection', 'x-hop'],
        ['X-Hop', 'dropped'],
        ['Keep-Alive', 'timeout=5'],
      ],
    });
    expect(res.status, JSON.stringify(res)).toBe(200);
    const got = res.json<{ url: string; headers: Record<string, string> }>();
    expect(got.url).toBe('/orders/a%2Fb/7?b=2&a=1');
    for (const h of ['x-api-key', 'x-timestamp', 'x-nonce', 'x-signature', 'x-hop', 'keep-alive']) {
      expect(got.headers).not.toHaveProperty(h);
    }
    expect(got.headers['x-partner-trace']).toBe('t-1');
    expect(got.headers['x-partner-key-id']).toBe(key.keyId);
    expect(got.headers['x-request-id']).toBe(res.headers['x-request-id']);
    expect(res.headers['x-request-id']).toMatch(/^req_/);
    expect(res.headers['ratelimit-policy']).toBe('"default";q=1000;w=1');
    expect(res.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/);

    const row = await auditRow(res.headers['x-request-id']);
    expect(row).toMatchObject({
      tenant_id: tenantId,
      key_id: key.keyId,
      secret_version: 1,
      client_ip: '127.0.0.1',
      method: 'GET',
      path: '/orders/a%2Fb/7',
      query: 'b=2&a=1',
      response_status: 200,
      outcome: 'ok',
    });
    const headers = JSON.parse(row.request_headers) as Record<string, string>;
    expect(headers['x-signature']).toBe('[REDACTED]');
    expect(headers['x-api-key']).toBe(key.keyId);
    expect(JSON.parse(row.response_headers)).toMatchObject({ 'x-request-id': res.headers['x-request-id'] });
    expect(row.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('goes to the longest matching prefix, appended to the upstream base path', async () => {
    const res = await call('/orders/archive/2020');
    expect(res.json<{ url: string }>().url).toBe('/base/orders/archive/2020');
    expect((await call('/orders')).json<{ url: string }>().url).toBe('/orders');
    expectProblem(await call('/ordersx'), 404, 'KG_ROUTE_NOT_FOUND');
  });

  it('drops hop-by-hop headers of the upstream answer and passes the rest', async () => {
    const res = await call('/hop');
    expect(res.status).toBe(201);
    expect(res.text).toBe('created');
    expect(res.headers['x-kept']).toBe('k');
    expect(res.headers['x-private']).toBeUndefined();
  });

  it('carries a body, hashed and forwarded byte for byte; large bodies are audited capped', async () => {
    const body = JSON.stringify({ items: 'x'.repeat(4000), note: 'ü' });
    const res = await call('/orders', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json<{ body: string }>().body).toBe(body);
    const row = await auditRow(res.headers['x-request-id']);
    expect(row.request_body_truncated).toBe(1);
    expect(Buffer.byteLength(row.request_body)).toBeLessThanOrEqual(AUDIT_CAP);
    expect(body.startsWith(row.request_body)).toBe(true);
    expect(row.response_body_truncated).toBe(1);
  });

  it('signed by the SDK passes, with odd but valid query encodings', async () => {
    const signedFetch = createSignedFetch({ keyId: key.keyId, secret: key.secret });
    const queries = [
      '?plus=a+b&space=a%20b',
      '?slash=%2F&tilde=%7E&tilde2=~',
      '?a=2&a=1&a=10&b',
      '?flag&empty=&=v',
      '?utf=%E4%B8%AD%E6%96%87&raw=中文&é=ü',
      '?x=%41%42c&Z=1&a=1',
      '?&&a=1&&',
      '?q=a%3Db%26c',
      '?sort=-name,+id&f[]=1&f[]=2',
    ];
    for (const q of queries) {
      const res = await signedFetch(`${gw.inboundUrl}/orders/list${q}`);
      expect(res.status, `${q}: ${await res.clone().text()}`).toBe(200);
      const got = (await res.json()) as { url: string };
      expect(got.url).toBe(
        new URL(`http://x/orders/list${q}`).pathname + new URL(`http://x/orders/list${q}`).search,
      );
    }
    for (const method of ['POST', 'PUT', 'patch', 'DELETE']) {
      const res = await signedFetch(`${gw.inboundUrl}/orders/1?v=1`, {
        method,
        body: method === 'DELETE' ? undefined : new Uint8Array([0, 1, 2, 255]),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as { method: string }).method).toBe(method.toUpperCase());
    }
  });

  it('passes with a raw query exactly as the gateway canonicalises it', async () => {
    const res = await call('/orders?b=%7e&a=%2f&c=%e4%b8%ad&d=+&e');
    expect(res.status, res.text).toBe(200);
    expect(res.json<{ url: string }>().url).toBe('/orders?b=%7e&a=%2f&c=%e4%b8%ad&d=+&e');
  });
});

describe('every refusal has its code, its status and an audit row', () => {
  const cases: Array<{
    name: string;
    status: number;
    code: string;
    outcome: string;
    run: () => Promise<SentResponse>;
  }> = [
    ...['X-Api-Key', 'X-Timestamp', 'X-Nonce', 'X-Signature'].map((header) => ({
      name: `missing ${header}`,
      status: 401,
      code: 'KG_AUTH_HEADER_MISSING',
      outcome: 'bad_request',
      run: () => {
        const signed = signExactly(key, 'GET', '/orders', '');
        delete signed[header];
        return send(gw.inboundUrl, '/orders', { headers: signed });
      },
    })),
    {
      name: 'a duplicated header',
      status: 400,
      code: 'KG_AUTH_HEADER_DUPLICATED',
      outcome: 'bad_request',
      run: () => {
        const signed = signExactly(key, 'GET', '/orders', '');
        return send(gw.inboundUrl, '/orders', {
          headers: [...Object.entries(signed).flat(), 'x-nonce', signed['X-Nonce']!],
        });
      },
    },
    {
      name: 'a non-numeric timestamp',
      status: 401,
      code: 'KG_TIMESTAMP_INVALID',
      outcome: 'bad_request',
      run: () =>
        send(gw.inboundUrl, '/orders', {
          headers: { ...signExactly(key, 'GET', '/orders', ''), 'X-Timestamp': '17e8' },
        }),
    },
    {
      name: 'a stale timestamp',
      status: 401,
      code: 'KG_TIMESTAMP_STALE',
      outcome: 'bad_signature',
      run: () => call('/orders', { sign: { timestamp: Math.floor(Date.now() / 1000) - 301 } }),
    },
    {
      name: 'a far-future timestamp (milliseconds)',
      status: 401,
      code: 'KG_TIMESTAMP_STALE',
      outcome: 'bad_signature',
      run: () => call('/orders', { sign: { timestamp: Date.now() } }),
    },
    {
      name: 'nonce characters outside the set',
      status: 401,
      code: 'KG_NONCE_INVALID',
      outcome: 'bad_request',
      run: () => call('/orders', { sign: { nonce: 'abcdefgh.ijklmnop' } }),
    },
    {
      name: 'a nonce too short',
      status: 401,
      code: 'KG_NONCE_INVALID',
      outcome: 'bad_request',
      run: () => call('/orders', { sign: { nonce: 'abc' } }),
    },
    {
      name: 'an unknown key',
      status: 401,
      code: 'KG_KEY_UNKNOWN',
      outcome: 'unknown_key',
      run: () =>
        send(gw.inboundUrl, '/orders', { key: { keyId: 'pk_01m83h0j753y134z6g9mnermhd', secret: 'x' } }),
    },
    {
      name: 'a key id we never issue',
      status: 401,
      code: 'KG_KEY_UNKNOWN',
      outcome: 'unknown_key',
      run: () =>
        send(gw.inboundUrl, '/orders', { key: { keyId: "'; drop table partner_keys; --", secret: 'x' } }),
    },
    {
      name: 'a route the key may not call',
      status: 403,
      code: 'KG_ROUTE_FORBIDDEN',
      outcome: 'forbidden',
      run: () => call('/closed/1'),
    },
    {
      name: 'a path no route serves',
      status: 404,
      code: 'KG_ROUTE_NOT_FOUND',
      outcome: 'not_found',
      run: () => call('/nowhere'),
    },
    {
      name: 'a malformed percent-escape',
      status: 400,
      code: 'KG_QUERY_MALFORMED',
      outcome: 'bad_request',
      run: () => call('/orders?a=%zz'),
    },
    {
      name: 'escapes that are not UTF-8',
      status: 400,
      code: 'KG_QUERY_MALFORMED',
      outcome: 'bad_request',
      run: () => call('/orders?a=%ff'),
    },
    {
      name: 'a dot segment in the path',
      status: 400,
      code: 'KG_BAD_REQUEST',
      outcome: 'bad_request',
      run: () => sendRaw(gw.inboundUrl, '/orders/%2e%2e/admin', { key }),
    },
    {
      name: 'a plain dot-dot segment',
      status: 400,
      code: 'KG_BAD_REQUEST',
      outcome: 'bad_request',
      run: () => sendRaw(gw.inboundUrl, '/orders/../admin?x=1', { key }),
    },
    {
      name: 'an absolute-form request target',
      status: 400,
      code: 'KG_BAD_REQUEST',
      outcome: 'bad_request',
      run: () => sendRaw(gw.inboundUrl, 'http://elsewhere.example/orders', { key }),
    },
    {
      name: 'a declared body over the limit',
      status: 413,
      code: 'KG_PAYLOAD_TOO_LARGE',
      outcome: 'too_large',
      run: () => call('/orders', { method: 'POST', body: 'x'.repeat(MAX_BODY + 1) }),
    },
    {
      name: 'an upstream that refuses connections',
      status: 502,
      code: 'KG_UPSTREAM_UNREACHABLE',
      outcome: 'upstream_error',
      run: () => call('/down'),
    },
    {
      name: 'an upstream slower than the route timeout',
      status: 504,
      code: 'KG_UPSTREAM_TIMEOUT',
      outcome: 'upstream_error',
      run: () => call('/slow'),
    },
  ];

  it.each(cases)('$name: $status $code', async ({ status, code, outcome, run }) => {
    const res = await run();
    expectProblem(res, status, code);
    const row = await auditRow(res.headers['x-request-id']);
    expect(row.outcome).toBe(outcome);
    expect(row.response_status).toBe(status);
    expect(JSON.parse(row.response_body)).toMatchObject({ code });
  });

  it('a wrong signature gets 401 with the SHA-256 of the gateway canonical string', async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const nonce = 'mismatch-nonce-0001';
    const res = await call('/orders/9?z=1&a=%7E', {
      method: 'POST',
      body: '{"a":1}',
      sign: { timestamp, nonce, secret: 'not-the-secret' },
    });
    const problem = expectProblem(res, 401, 'KG_SIGNATURE_MISMATCH') as unknown as {
      canonicalSha256: string;
    };
    const canonical = canonicalString({
      method: 'POST',
      path: '/orders/9',
      rawQuery: 'z=1&a=%7E',
      keyId: key.keyId,
      timestamp: String(timestamp),
      nonce,
      bodySha256Hex: sha256Hex('{"a":1}'),
    });
    expect(problem.canonicalSha256).toBe(createHash('sha256').update(canonical).digest('hex'));
    const row = await auditRow(res.headers['x-request-id']);
    expect(row).toMatchObject({
      outcome: 'bad_signature',
      key_id: key.keyId,
      secret_version: null,
      request_body: '{"a":1}',
    });
    // The key is known: the answer carries the quota, and nothing was spent for it.
    expect(res.headers['ratelimit-policy']).toBe('"default";q=1000;w=1');
  });

  it('a signature in the wrong form (upper-case hex) gets 401 with canonicalSha256 too', async () => {
    const headers = signExactly(key, 'GET', '/orders/7', '');
    const res = await send(gw.inboundUrl, '/orders/7', {
      headers: { ...headers, 'X-Signature': headers['X-Signature']!.toUpperCase() },
    });
    const problem = expectProblem(res, 401, 'KG_SIGNATURE_MISMATCH') as unknown as Record<string, string>;
    expect(problem.detail).toContain('64 lowercase hex characters');
    const canonical = canonicalString({
      method: 'GET',
      path: '/orders/7',
      rawQuery: '',
      keyId: key.keyId,
      timestamp: headers['X-Timestamp']!,
      nonce: headers['X-Nonce']!,
      bodySha256Hex: sha256Hex(''),
    });
    expect(problem.canonicalSha256).toBe(createHash('sha256').update(canonical).digest('hex'));
  });

  it('a replayed nonce is refused, whatever else changes', async () => {
    const nonce = `replay-${Date.now()}-abcdef`;
    expect((await call('/orders', { sign: { nonce } })).status).toBe(200);
    const again = await call('/orders', { sign: { nonce } });
    expectProblem(again, 401, 'KG_NONCE_REPLAYED');
    expect((await auditRow(again.headers['x-request-id'])).outcome).toBe('replayed');
    // The same nonce on another path is still a replay: the nonce is per key, not per request.
    expectProblem(await call('/orders/other', { sign: { nonce } }), 401, 'KG_NONCE_REPLAYED');
  });

  it('a streamed body over the limit gets 413 without the upstream seeing it', async () => {
    const before = upstream.received.length;
    const stream = new PassThrough();
    const headers = signExactly(key, 'POST', '/orders', 'irrelevant');
    const pending = request(`${gw.inboundUrl}/orders`, { method: 'POST', headers, body: stream });
    const chunk = Buffer.alloc(16 * 1024, 'y');
    let written = 0;
    const pump = setInterval(() => {
      if (written > MAX_BODY * 4 || stream.destroyed) {
        clearInterval(pump);
        stream.end();
        return;
      }
      stream.write(chunk);
      written += chunk.length;
    }, 1);
    const res = await pending;
    clearInterval(pump);
    const text = await res.body.text();
    expect(res.statusCode, text).toBe(413);
    expect(res.headers['keygate-error']).toBe('KG_PAYLOAD_TOO_LARGE');
    expect(res.headers.connection).toBe('close');
    expect(upstream.received.length).toBe(before);
    const row = await auditRow(res.headers['x-request-id']);
    expect(row).toMatchObject({ outcome: 'too_large', request_body: '', request_body_truncated: 1 });
  });

  it('a revoked key is refused with its own code', async () => {
    const doomed = await createTestKey(gw.services.ctx, tenantId);
    secrets.push(doomed.secret);
    expect((await send(gw.inboundUrl, '/orders', { key: doomed })).status).toBe(200);
    await revokePartnerKey(gw.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: doomed.keyId });
    const res = await send(gw.inboundUrl, '/orders', { key: doomed });
    expectProblem(res, 401, 'KG_KEY_REVOKED');
    expect(await auditRow(res.headers['x-request-id'])).toMatchObject({
      outcome: 'revoked_key',
      key_id: doomed.keyId,
      tenant_id: tenantId,
    });
  });

  it('a route listing other keys refuses this one', async () => {
    const other = await createTestKey(gw.services.ctx, tenantId);
    secrets.push(other.secret);
    await createTestRoute(gw.services.ctx, tenantId, '/vip', upstream.url, { keyIds: [other.keyId] });
    expectProblem(await call('/vip'), 403, 'KG_ROUTE_FORBIDDEN');
    expect((await send(gw.inboundUrl, '/vip', { key: other })).status).toBe(200);
  });

  it('a route listing scopes admits the keys holding one of them, and the keys it lists by id', async () => {
    const reader = await createTestKey(gw.services.ctx, tenantId, { scopes: ['orders:read', 'misc'] });
    const plain = await createTestKey(gw.services.ctx, tenantId);
    const listed = await createTestKey(gw.services.ctx, tenantId);
    secrets.push(reader.secret, plain.secret, listed.secret);
    await createTestRoute(gw.services.ctx, tenantId, '/scoped', upstream.url, {
      scopes: ['orders:read', 'orders:admin'],
      keyIds: [listed.keyId],
    });
    await createTestRoute(gw.services.ctx, tenantId, '/by-scope', upstream.url, { scopes: ['orders:write'] });
    expect((await send(gw.inboundUrl, '/scoped/1', { key: reader })).status).toBe(200);
    expect((await send(gw.inboundUrl, '/scoped/1', { key: listed })).status).toBe(200);
    expectProblem(await send(gw.inboundUrl, '/scoped/1', { key: plain }), 403, 'KG_ROUTE_FORBIDDEN');
    expectProblem(await send(gw.inboundUrl, '/by-scope', { key: reader }), 403, 'KG_ROUTE_FORBIDDEN');

    // Taking the scope away reaches this node at once (the key cache drops the key).
    const view = await setPartnerKeyScopes(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      keyId: reader.keyId,
      scopes: ['orders:write'],
    });
    expect(view.scopes).toEqual(['orders:write']);
    await waitFor(async () => (await send(gw.inboundUrl, '/scoped/1', { key: reader })).status === 403, 6000);
    expect((await send(gw.inboundUrl, '/by-scope', { key: reader })).status).toBe(200);
  });

  it('refuses scopes that are not scopes', async () => {
    for (const scopes of [
      ['has space'],
      [':leading'],
      ['x'.repeat(65)],
      Array.from({ length: 33 }, (_, i) => `s${i}`),
    ]) {
      await expect(createTestKey(gw.services.ctx, tenantId, { scopes })).rejects.toMatchObject({
        code: 'KG_VALIDATION_FAILED',
      });
      await expect(
        createTestRoute(gw.services.ctx, tenantId, '/never', upstream.url, { scopes }),
      ).rejects.toMatchObject({ code: 'KG_VALIDATION_FAILED' });
    }
  });

  it('keys only reach routes of their own tenant', async () => {
    const otherTenant = await createTestTenant(gw.services.ctx, 'other');
    const stranger = await createTestKey(gw.services.ctx, otherTenant);
    secrets.push(stranger.secret);
    expectProblem(await send(gw.inboundUrl, '/orders', { key: stranger }), 404, 'KG_ROUTE_NOT_FOUND');
  });
});

describe('rotation', () => {
  it('verifies with both live secrets, records which matched, and stops after retire-secret', async () => {
    const rotating = await createTestKey(gw.services.ctx, tenantId);
    secrets.push(rotating.secret);
    const v1 = { keyId: rotating.keyId, secret: rotating.secret };
    const rotated = await rotatePartnerKey(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      keyId: rotating.keyId,
    });
    secrets.push(rotated.secret);
    expect(rotated.secretVersion).toBe(2);
    const v2 = { keyId: rotating.keyId, secret: rotated.secret };

    const a = await send(gw.inboundUrl, '/orders', { key: v1 });
    const b = await send(gw.inboundUrl, '/orders', { key: v2 });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((await auditRow(a.headers['x-request-id'])).secret_version).toBe(1);
    expect((await auditRow(b.headers['x-request-id'])).secret_version).toBe(2);

    await expect(
      rotatePartnerKey(gw.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: rotating.keyId }),
    ).rejects.toMatchObject({
      code: 'KG_CONFLICT',
    });
    const retired = await retirePartnerSecret(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      keyId: rotating.keyId,
    });
    expect(retired).toMatchObject({ retiredVersion: 1, liveSecretVersions: [2] });
    expectProblem(await send(gw.inboundUrl, '/orders', { key: v1 }), 401, 'KG_SIGNATURE_MISMATCH');
    const after = await send(gw.inboundUrl, '/orders', { key: v2 });
    expect(after.status).toBe(200);
    expect((await auditRow(after.headers['x-request-id'])).secret_version).toBe(2);
    await expect(
      retirePartnerSecret(gw.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: rotating.keyId }),
    ).rejects.toMatchObject({
      code: 'KG_CONFLICT',
    });
  });
});

describe('rate limiting', () => {
  for (const algorithm of ['token-bucket', 'gcra'] as const) {
    it(`${algorithm}: headers on every answer, 429 with Retry-After once the burst is spent`, async () => {
      const limited = await createTestKey(gw.services.ctx, tenantId, {
        algorithm,
        rate: 1,
        periodSeconds: 3600,
        burst: 3,
      });
      secrets.push(limited.secret);
      const answers: SentResponse[] = [];
      for (let i = 0; i < 5; i++) answers.push(await send(gw.inboundUrl, '/orders', { key: limited }));
      const statuses = answers.map((r) => r.status);
      const allowed = statuses.filter((s) => s === 200).length;
      expect(allowed).toBe(3);
      expect(statuses.slice(allowed)).toEqual(Array(5 - allowed).fill(429));
      for (const r of answers) {
        expect(r.headers['ratelimit-policy']).toMatch(/^"default";q=3;w=\d+$/);
        expect(r.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/);
      }
      expect(answers[0]!.headers.ratelimit).toMatch(/^"default";r=2;/);
      const refused = answers.at(-1)!;
      expectProblem(refused, 429, 'KG_RATE_LIMITED');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect((await auditRow(refused.headers['x-request-id'])).outcome).toBe('rate_limited');
      // Errors after the key is known carry the headers too, and spend nothing more.
      const notFound = await send(gw.inboundUrl, '/nowhere', { key: limited });
      expect(notFound.status).toBe(429);
      const badSig = await send(gw.inboundUrl, '/orders', { key: limited, sign: { secret: 'wrong' } });
      expectProblem(badSig, 401, 'KG_SIGNATURE_MISMATCH');
      expect(badSig.headers.ratelimit).toMatch(/^"default";r=0;t=\d+$/);
    });
  }
});

describe('the CLI', () => {
  const cli = (...argv: string[]) => runKeygateInProcess(argv, gw.env);

  it('creates a key and a route that the running gateway serves at once', async () => {
    const created = await cli(
      'partner-key',
      'create',
      '--tenant',
      tenantId,
      '--name',
      'cli key',
      '--algorithm',
      'gcra',
      '--rate',
      '600/m',
      '--burst',
      '5',
      '--on-redis-down',
      'fail-closed',
      '--json',
    );
    expect(created.code, created.stderr).toBe(0);
    const { keyId, secret, policy } = JSON.parse(created.stdout) as {
      keyId: string;
      secret: string;
      policy: object;
    };
    secrets.push(secret);
    expect(keyId).toMatch(/^pk_/);
    expect(secret).toMatch(/^kgp_/);
    expect(policy).toEqual({
      algorithm: 'gcra',
      rate: 600,
      periodSeconds: 60,
      burst: 5,
      onRedisDown: 'fail-closed',
    });

    const route = await cli(
      'route',
      'add',
      '--tenant',
      tenantId,
      '--prefix',
      '/cli',
      '--upstream',
      upstream.url,
      '--timeout-ms',
      '2000',
      '--keys',
      keyId,
      '--json',
    );
    expect(route.code, route.stderr).toBe(0);
    expect(JSON.parse(route.stdout)).toMatchObject({ prefix: '/cli', timeoutMs: 2000, keyIds: [keyId] });

    const res = await send(gw.inboundUrl, '/cli/x', { key: { keyId, secret } });
    expect(res.status, res.text).toBe(200);
    expect(res.headers['ratelimit-policy']).toBe('"default";q=5;w=1');

    const rotated = await cli('partner-key', 'rotate', '--tenant', tenantId, keyId, '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    const second = JSON.parse(rotated.stdout) as { secret: string; secretVersion: number };
    secrets.push(second.secret);
    expect(second.secretVersion).toBe(2);
    // Both verify, on this node at once (the change travels over Redis pub/sub).
    await waitFor(
      async () =>
        (await send(gw.inboundUrl, '/cli/x', { key: { keyId, secret: second.secret } })).status === 200,
      6000,
    );

    const retired = await cli('partner-key', 'retire-secret', '--tenant', tenantId, keyId);
    expect(retired.code, retired.stderr).toBe(0);
    expect(retired.stdout).toContain('secret version 1 retired');
    await waitFor(
      async () => (await send(gw.inboundUrl, '/cli/x', { key: { keyId, secret } })).status === 401,
      6000,
    );

    const revoked = await cli('partner-key', 'revoke', '--tenant', tenantId, keyId);
    expect(revoked.code, revoked.stderr).toBe(0);
    await waitFor(
      async () =>
        (await send(gw.inboundUrl, '/cli/x', { key: { keyId, secret: second.secret } })).headers[
          'keygate-error'
        ] === 'KG_KEY_REVOKED',
      6000,
    );
  });

  it('gives keys scopes and routes scope rules', async () => {
    const created = await cli(
      'partner-key',
      'create',
      '--tenant',
      tenantId,
      '--name',
      'scoped',
      '--scopes',
      'reports:read, misc',
      '--json',
    );
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout) as { keyId: string; secret: string; scopes: string[] };
    secrets.push(key.secret);
    expect(key.scopes).toEqual(['misc', 'reports:read']);
    const route = await cli(
      'route',
      'add',
      '--tenant',
      tenantId,
      '--prefix',
      '/reports',
      '--upstream',
      upstream.url,
      '--scopes',
      'reports:read',
    );
    expect(route.code, route.stderr).toBe(0);
    expect(route.stdout).toContain('scopes reports:read');
    expect((await send(gw.inboundUrl, '/reports/1', { key })).status).toBe(200);

    const cleared = await cli('partner-key', 'set-scopes', '--tenant', tenantId, key.keyId, '--scopes', '');
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout).toContain('scopes (none)');
    await waitFor(async () => (await send(gw.inboundUrl, '/reports/1', { key })).status === 403, 6000);

    const missing = await cli('partner-key', 'set-scopes', '--tenant', tenantId, key.keyId);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--scopes is required');
    const bad = await cli('partner-key', 'set-scopes', '--tenant', tenantId, key.keyId, '--scopes', 'a b');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('not valid scopes: "a b"');
  });

  it('prints the secret once, human-readable, and lists keys without secrets', async () => {
    const created = await cli('partner-key', 'create', '--tenant', tenantId, '--name', 'human');
    expect(created.code, created.stderr).toBe(0);
    const secret = created.stdout.trim().split('\n').at(-1)!;
    secrets.push(secret);
    expect(secret).toMatch(/^kgp_/);
    const list = await cli('partner-key', 'list', '--tenant', tenantId, '--json');
    expect(list.code).toBe(0);
    expect(list.stdout).not.toContain(secret);
    expect(list.stdout).toContain('human');
  });

  it('lists and removes routes; a removed route stops serving at once', async () => {
    const added = await cli(
      'route',
      'add',
      '--tenant',
      tenantId,
      '--prefix',
      '/temp',
      '--upstream',
      upstream.url,
      '--json',
    );
    expect(added.code, added.stderr).toBe(0);
    expect((await call('/temp/1')).status).toBe(200);
    const list = await cli('route', 'list', '--tenant', tenantId, '--json');
    const routes = (JSON.parse(list.stdout) as { items: Array<{ prefix: string; keyIds: string[] | null }> })
      .items;
    expect(routes.map((r) => r.prefix)).toEqual(
      expect.arrayContaining(['/orders', '/orders/archive', '/closed', '/temp']),
    );
    expect(routes.find((r) => r.prefix === '/closed')!.keyIds).toEqual([]);
    const removed = await cli('route', 'remove', '--tenant', tenantId, '/temp');
    expect(removed.code, removed.stderr).toBe(0);
    await waitFor(
      async () => (await call('/temp/1')).headers['keygate-error'] === 'KG_ROUTE_NOT_FOUND',
      6000,
    );
  });

  it('explains bad input with a non-zero exit', async () => {
    const bad = [
      ['partner-key', 'create', '--tenant', tenantId, '--name', 'x', '--rate', 'fast'],
      ['partner-key', 'create', '--tenant', tenantId, '--name', 'x', '--algorithm', 'leaky'],
      ['partner-key', 'create', '--tenant', tenantId, '--name', 'x', '--on-redis-down', 'panic'],
      ['partner-key', 'create', '--tenant', tenantId, '--name', 'x', '--burst', '0'],
      ['route', 'add', '--tenant', tenantId, '--prefix', 'orders', '--upstream', upstream.url],
      ['route', 'add', '--tenant', tenantId, '--prefix', '/a/../b', '--upstream', upstream.url],
      ['route', 'add', '--tenant', tenantId, '--prefix', '/ok', '--upstream', 'file:///etc/passwd'],
      [
        'route',
        'add',
        '--tenant',
        tenantId,
        '--prefix',
        '/ok',
        '--upstream',
        upstream.url,
        '--keys',
        'pk_nope',
      ],
      ['route', 'add', '--tenant', tenantId, '--prefix', '/orders', '--upstream', upstream.url],
      ['partner-key', 'rotate', '--tenant', tenantId, 'pk_01m83h0j753y134z6g9mnermhd'],
    ];
    for (const argv of bad) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr, argv.join(' ')).toMatch(/KG_[A-Z_]+|required|must/);
    }
    const help = await cli('route', 'add', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--timeout-ms');
  });
});

describe('admin changes', () => {
  it('are authorized and audited in admin_audit with secrets masked', async () => {
    const tenantAdmin = {
      kind: 'admin' as const,
      tokenId: 'atk_x',
      role: 'tenant_developer' as const,
      tenantId,
    };
    await expect(
      rotatePartnerKey(gw.services.ctx, tenantAdmin, { tenant: tenantId, keyId: key.keyId }),
    ).rejects.toMatchObject({ code: 'KG_FORBIDDEN' });
    const otherAdmin = {
      kind: 'admin' as const,
      tokenId: 'atk_y',
      role: 'tenant_admin' as const,
      tenantId: 'ten_other',
    };
    await expect(listPartnerKeys(gw.services.ctx, otherAdmin, tenantId)).rejects.toMatchObject({
      code: 'KG_FORBIDDEN',
    });
    await expect(
      addRoute(gw.services.ctx, otherAdmin, { tenant: tenantId, prefix: '/evil', upstream: upstream.url }),
    ).rejects.toMatchObject({ code: 'KG_FORBIDDEN' });

    const rows = await gw.database.db
      .selectFrom('admin_audit')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .execute();
    const actions = new Set(rows.map((r) => r.action));
    for (const action of [
      'partner-key.create',
      'partner-key.rotate',
      'partner-key.retire-secret',
      'partner-key.revoke',
      'route.create',
    ]) {
      expect(actions).toContain(action);
    }
    expect(rows.find((r) => r.action === 'partner-key.create')!.after_state).toContain('****');
  });
});

describe('no partner secret leaks', () => {
  it('into any audit row, admin-audit row or error body', async () => {
    expect(secrets.length).toBeGreaterThan(5);
    // Rows are written in the order they are queued: once a request sent now has its row, the
    // rows of every request before it have landed too.
    const last = await call('/orders/audit-barrier');
    await auditRow(last.headers['x-request-id']);
    const audit = await gw.database.db.selectFrom('audit_log').selectAll().execute();
    const admin = await gw.database.db.selectFrom('admin_audit').selectAll().execute();
    expect(audit.length).toBeGreaterThan(30);
    const text = JSON.stringify(audit) + JSON.stringify(admin);
    for (const secret of secrets) expect(text).not.toContain(secret);
    const sealed = await gw.database.db.selectFrom('partner_key_secrets').select('ciphertext').execute();
    for (const secret of secrets) expect(JSON.stringify(sealed)).not.toContain(secret);
  });
});
