/**
 * What the inbound listener passes on, both ways, as an HTTP gateway must (RFC 9110): the
 * forwarding headers the internal service gets, and the framing of answers without a body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type PartnerKeyCredentials,
  send,
  waitFor,
} from './helpers/inbound.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

let gw: TestGateway;
let upstream: TestUpstream;
let key: PartnerKeyCredentials;

beforeAll(async () => {
  gw = await startTestGateway({ roles: ['inbound'] });
  upstream = await startUpstream((req, res) => {
    const status = Number(req.url.split('/')[2]);
    if (!status) return json(res, 200, { ok: true });
    res.writeHead(status, { etag: '"v1"', ...(status === 204 ? {} : { 'content-length': '1234' }) });
    res.end();
  });
  const tenantId = await createTestTenant(gw.services.ctx, 'fwd');
  key = await createTestKey(gw.services.ctx, tenantId, { rate: 1000, burst: 1000 });
  await createTestRoute(gw.services.ctx, tenantId, '/svc', upstream.url);
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('forwarding headers', () => {
  it('append the peer to X-Forwarded-For, set X-Real-IP to it, and add Via', async () => {
    const res = await send(gw.inboundUrl, '/svc/a', {
      key,
      headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Real-IP': '198.51.100.1', Via: '1.1 edge' },
    });
    expect(res.status, res.text).toBe(200);
    const got = upstream.received.at(-1)!.headers;
    expect(got['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(got['x-real-ip']).toBe('127.0.0.1');
    expect(got.via).toBe('1.1 edge, 1.1 keygate');

    await send(gw.inboundUrl, '/svc/b', { key });
    const plain = upstream.received.at(-1)!.headers;
    expect(plain['x-forwarded-for']).toBe('127.0.0.1');
    expect(plain.via).toBe('1.1 keygate');
  });
});

describe('behind a trusted proxy (KEYGATE_TRUSTED_PROXIES)', () => {
  it('takes the client address from X-Forwarded-For, for the service and the audit row', async () => {
    const behind = await startTestGateway({
      roles: ['inbound'],
      env: { KEYGATE_TRUSTED_PROXIES: '127.0.0.1' },
    });
    try {
      const tenantId = await createTestTenant(behind.services.ctx, 'lb');
      const lbKey = await createTestKey(behind.services.ctx, tenantId);
      await createTestRoute(behind.services.ctx, tenantId, '/svc', upstream.url);
      // What the load balancer (here: this process on 127.0.0.1) adds, after a partner's own claim.
      const res = await send(behind.inboundUrl, '/svc/lb', {
        key: lbKey,
        headers: { 'X-Forwarded-For': '1.1.1.1, 198.51.100.7' },
      });
      expect(res.status, res.text).toBe(200);
      const got = upstream.received.at(-1)!.headers;
      expect(got['x-real-ip']).toBe('198.51.100.7');
      expect(got['x-forwarded-for']).toBe('1.1.1.1, 198.51.100.7, 127.0.0.1');
      const requestId = String(res.headers['x-request-id']);
      await waitFor(async () => {
        const row = await behind.services.db
          .selectFrom('audit_log')
          .select('client_ip')
          .where('request_id', '=', requestId)
          .executeTakeFirst();
        return row?.client_ip === '198.51.100.7';
      }, 5000);
    } finally {
      await behind.close();
    }
  });
});

describe('answers without a body', () => {
  it.each([
    ['HEAD', 200, '1234'],
    ['GET', 304, '1234'],
    ['GET', 204, undefined],
  ] as const)(
    '%s answered %i keep the upstream framing: Content-Length %s',
    async (method, status, length) => {
      const res = await send(gw.inboundUrl, `/svc/${status}`, { key, method });
      expect(res.status).toBe(status);
      expect(res.headers['content-length']).toBe(length);
      expect(res.headers.etag).toBe('"v1"');
      expect(res.text).toBe('');
    },
  );
});
