/**
 * Property tests on the inbound listener with the embedded defaults (SQLite, in-process nonce
 * store and limiter): whatever the signature headers, path and query, the gateway answers 2xx or
 * 4xx, promptly, and keeps serving.
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type PartnerKeyCredentials,
  send,
  sendRaw,
  signExactly,
  waitFor,
} from './helpers/inbound.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

let gw: TestGateway;
let upstream: TestUpstream;
let key: PartnerKeyCredentials;
let tenantId: string;

beforeAll(async () => {
  gw = await startTestGateway({ roles: ['inbound'], env: { KEYGATE_INBOUND_MAX_BODY_BYTES: '4096' } });
  upstream = await startUpstream((req, res) => json(res, 200, { url: req.url }));
  tenantId = await createTestTenant(gw.services.ctx, 'fuzz');
  key = await createTestKey(gw.services.ctx, tenantId, { rate: 100_000, burst: 100_000 });
  await createTestRoute(gw.services.ctx, tenantId, '/', upstream.url);
  await createTestRoute(gw.services.ctx, tenantId, '/closed', upstream.url, { keyIds: [] });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('embedded defaults (no Redis)', () => {
  it('verify, refuse a replay and rate-limit in process', async () => {
    const limited = await createTestKey(gw.services.ctx, tenantId, {
      rate: 1,
      periodSeconds: 3600,
      burst: 2,
    });
    const nonce = 'embedded-nonce-000001';
    const first = await send(gw.inboundUrl, '/orders', { key: limited, sign: { nonce } });
    expect(first.status, first.text).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"default";q=2;w=7200');
    expect(
      (await send(gw.inboundUrl, '/orders', { key: limited, sign: { nonce } })).headers['keygate-error'],
    ).toBe('KG_NONCE_REPLAYED');
    expect((await send(gw.inboundUrl, '/orders', { key: limited })).status).toBe(200);
    const refused = await send(gw.inboundUrl, '/orders', { key: limited });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    await waitFor(async () => {
      const rows = await gw.database.db
        .selectFrom('audit_log')
        .select('outcome')
        .where('key_id', '=', limited.keyId)
        .execute();
      return rows.length === 4;
    });
  });
});

const SIGNATURE_HEADER_NAMES = ['X-Api-Key', 'X-Timestamp', 'X-Nonce', 'X-Signature'] as const;

const queryToken = fc.constantFrom(
  'a',
  'B',
  '=',
  '&',
  '%',
  '%2',
  '%zz',
  '%41',
  '%2F',
  '%2f',
  '%7E',
  '+',
  '%20',
  '%E4%B8%AD',
  '%FF',
  '%C3',
  '%00',
  '~',
  '.',
  '-',
  '_',
  '*',
  '[',
  ']',
  '!',
  '$',
  "'",
  '(',
  ')',
  ',',
  ';',
  ':',
  '@',
  '/',
  '?',
  'x'.repeat(300),
);
const pathSegment = fc.constantFrom(
  'orders',
  'closed',
  '..',
  '.',
  '%2e%2e',
  '%2E',
  '.%2e',
  'a%2Fb',
  '%5C..',
  'x',
  '%',
  '%zz',
  '',
  'ORDERS',
  'a;b',
  '~u',
  '%00',
);
const headerText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 90 }),
  fc.constantFrom(
    '0',
    '-1',
    '1e9',
    '99999999999999999999',
    'pk_',
    'a,b',
    '  spaced  ',
    'pk_01m83h0j753y134z6g9mnermhd',
  ),
);
const headerMode = fc.oneof(
  { arbitrary: fc.constant('valid'), weight: 12 },
  { arbitrary: fc.constantFrom('absent', 'empty', 'random', 'duplicate', 'duplicate-random'), weight: 5 },
);

const fuzzRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  segments: fc.array(pathSegment, { maxLength: 4 }),
  query: fc.option(
    fc.array(queryToken, { maxLength: 10 }).map((t) => t.join('')),
    { nil: undefined },
  ),
  modes: fc.tuple(headerMode, headerMode, headerMode, headerMode),
  randoms: fc.tuple(headerText, headerText, headerText, headerText),
  body: fc.option(fc.string({ maxLength: 200 }), { nil: undefined }),
  bigBody: fc.boolean(),
  extra: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), headerText), { maxLength: 3 }),
});

type FuzzRequest = typeof fuzzRequest extends fc.Arbitrary<infer T> ? T : never;

const VALID_REQUEST: FuzzRequest = {
  method: 'POST',
  segments: ['orders'],
  query: 'a=1&b=%2F',
  modes: ['valid', 'valid', 'valid', 'valid'],
  randoms: ['x', 'x', 'x', 'x'],
  body: '{"n":1}',
  bigBody: false,
  extra: [],
};
/** 200, a missing header, a duplicated one, a well-formed but wrong signature, a dot segment. */
const DEEP_EXAMPLES: FuzzRequest[] = [
  VALID_REQUEST,
  { ...VALID_REQUEST, modes: ['absent', 'valid', 'valid', 'valid'] },
  { ...VALID_REQUEST, modes: ['valid', 'duplicate', 'valid', 'valid'] },
  {
    ...VALID_REQUEST,
    modes: ['valid', 'valid', 'valid', 'random'],
    randoms: ['x', 'x', 'x', 'f'.repeat(64)],
  },
  { ...VALID_REQUEST, segments: ['..', 'orders'] },
];

describe('fuzzing headers, path and query through the real listener', () => {
  it('never yields a 5xx, a crash or a hang', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        const target = `/${r.segments.join('/')}${r.query === undefined ? '' : `?${r.query}`}`;
        const body = r.bigBody ? 'z'.repeat(5000) : (r.body ?? '');
        const valid = signExactly(key, r.method, target, body);
        const headers: Array<[string, string]> = [];
        SIGNATURE_HEADER_NAMES.forEach((name, i) => {
          const mode = r.modes[i]!;
          const random = r.randoms[i]!;
          if (mode === 'valid') headers.push([name, valid[name]!]);
          else if (mode === 'empty') headers.push([name, '']);
          else if (mode === 'random') headers.push([name, random]);
          else if (mode === 'duplicate')
            headers.push([name, valid[name]!], [name.toLowerCase(), valid[name]!]);
          else if (mode === 'duplicate-random') headers.push([name, valid[name]!], [name, random]);
        });
        for (const [name, value] of r.extra) headers.push([`X-F-${name}`, value]);
        const res = await sendRaw(gw.inboundUrl, target, {
          method: r.method,
          headers,
          body: body || undefined,
        });
        expect(res.status, `${r.method} ${target} -> ${res.status} ${res.text}`).toBeGreaterThanOrEqual(200);
        expect(res.status, `${r.method} ${target} -> ${res.status} ${res.text}`).toBeLessThan(500);
        if (res.status >= 400 && r.method !== 'HEAD') {
          expect(res.headers['keygate-error']).toMatch(/^KG_/);
        }
        seen.add(String(res.headers['keygate-error'] ?? res.status));
      }),
      // Besides the random runs, one request that stops at each step named below, so that the
      // check after the run does not depend on what the random ones happened to hit.
      { numRuns: 400, examples: DEEP_EXAMPLES.map((example) => [example]) },
    );
    // The requests reach deep into the pipeline, not only the first check.
    for (const outcome of [
      '200',
      'KG_AUTH_HEADER_MISSING',
      'KG_AUTH_HEADER_DUPLICATED',
      'KG_SIGNATURE_MISMATCH',
      'KG_BAD_REQUEST',
    ]) {
      expect(seen).toContain(outcome);
    }
    const health = await fetch(`${gw.inboundUrl}/healthz`);
    expect(health.status).toBe(200);
    // A request that is all valid still goes through after the storm.
    expect((await send(gw.inboundUrl, '/orders?a=1', { key })).status).toBe(200);
  }, 120_000);
});

describe('bytes that are not HTTP', () => {
  /** Writes `bytes` on a fresh connection and reads until the gateway closes it. */
  const exchange = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(gw.inboundUrl);
      const socket = net.connect(Number(port), hostname, () => socket.write(bytes));
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
      socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
    });

  it.each([
    ['garbage', 'HELLO THERE\r\n\r\n', 400, 'KG_BAD_REQUEST'],
    ['a bad header line', 'GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n', 400, 'KG_BAD_REQUEST'],
    [
      'headers above 16 KiB',
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'KG_HEADERS_TOO_LARGE',
    ],
  ])(
    '%s get problem+json with Keygate-Error, and the connection is closed',
    async (_, bytes, status, code) => {
      const answer = await exchange(bytes);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(head).toContain(`Keygate-Error: ${code}`);
      expect(head).toContain('content-type: application/problem+json');
      expect(JSON.parse(body!)).toMatchObject({ status, code, requestId: expect.stringMatching(/^req_/) });
      expect((await fetch(`${gw.inboundUrl}/healthz`)).status).toBe(200);
    },
  );
});
