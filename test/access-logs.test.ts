/**
 * The inbound and admin listeners' access logs: one JSON line per request at info (warn for 5xx),
 * with the request id, and never a credential. (The outbound proxy's are in outbound-logs.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { createAdminToken } from '../src/services/tokens.ts';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type PartnerKeyCredentials,
  send,
  signExactly,
} from './helpers/inbound.ts';
import { captureLogLines } from './helpers/log-lines.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

describe('access logs', () => {
  const log = captureLogLines();
  const { lines, raw } = log;
  let gw: TestGateway;
  let upstream: TestUpstream;
  let key: PartnerKeyCredentials;

  beforeAll(async () => {
    gw = await startTestGateway({ logTo: log.sink });
    upstream = await startUpstream((_req, res) => json(res, 200, { ok: true }));
    const tenantId = await createTestTenant(gw.services.ctx, 'log');
    key = await createTestKey(gw.services.ctx, tenantId);
    await createTestRoute(gw.services.ctx, tenantId, '/svc', upstream.url);
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const lineFor = (requestId: unknown) => lines.find((l) => l.requestId === requestId);

  it('logs every inbound call, admitted or refused, with its outcome and code', async () => {
    const signed = signExactly(key, 'GET', '/svc/orders?x=1', '');
    const ok = await send(gw.inboundUrl, '/svc/orders?x=1', { headers: signed });
    expect(ok.status).toBe(200);
    const forged = await send(gw.inboundUrl, '/svc/orders', { key, sign: { secret: 'wrong' } });
    expect(forged.status).toBe(401);

    expect(lineFor(ok.headers['x-request-id'])).toMatchObject({
      level: 30,
      msg: 'inbound call',
      keyId: key.keyId,
      method: 'GET',
      path: '/svc/orders',
      status: 200,
      outcome: 'ok',
    });
    expect(lineFor(forged.headers['x-request-id'])).toMatchObject({
      level: 30,
      msg: 'inbound call',
      status: 401,
      code: 'KG_SIGNATURE_MISMATCH',
    });
    // What went over the wire: the signature, and the query (lines carry the path only).
    for (const line of raw) {
      expect(line).not.toContain(signed['X-Signature']);
      expect(line).not.toContain('x=1');
    }
  });

  it('logs every admin request with its route template, the token id and any error code', async () => {
    const admin = await createAdminToken(gw.services.ctx, CLI_ACTOR, { role: 'gateway_admin', name: 'log' });
    const listed = await fetch(`${gw.adminUrl}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(listed.status).toBe(200);
    const refused = await fetch(`${gw.adminUrl}/admin/v1/tenants`, {
      headers: { authorization: 'Bearer not-a-token' },
    });
    expect(refused.status).toBe(401);

    expect(lineFor(listed.headers.get('x-request-id'))).toMatchObject({
      level: 30,
      msg: 'admin request',
      method: 'GET',
      route: '/admin/v1/tenants',
      status: 200,
      tokenId: admin.id,
      role: 'gateway_admin',
    });
    const refusedLine = lineFor(refused.headers.get('x-request-id'));
    expect(refusedLine).toMatchObject({ level: 30, msg: 'admin request', status: 401 });
    expect(refusedLine!.code).toMatch(/^KG_/);
    for (const line of raw) expect(line).not.toContain(admin.token);
  });
});

describe('access logs switched off (KEYGATE_ACCESS_LOG=false)', () => {
  const log = captureLogLines();
  const { lines } = log;
  let gw: TestGateway;
  let upstream: TestUpstream;

  beforeAll(async () => {
    gw = await startTestGateway({ logTo: log.sink, env: { KEYGATE_ACCESS_LOG: 'false' } });
    upstream = await startUpstream((_req, res) => json(res, 502, { upstream: 'down' }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('writes no line for answered requests, and still one for a 5xx', async () => {
    const tenantId = await createTestTenant(gw.services.ctx, 'quiet');
    const key = await createTestKey(gw.services.ctx, tenantId);
    await createTestRoute(gw.services.ctx, tenantId, '/svc', upstream.url);
    await createTestRoute(gw.services.ctx, tenantId, '/gone', 'http://127.0.0.1:1');
    expect((await send(gw.inboundUrl, '/svc/a', { key })).status).toBe(502);
    const refused = await send(gw.inboundUrl, '/gone/a', { key });
    expect(refused.status).toBe(502);
    expect((await fetch(`${gw.adminUrl}/admin/v1/tenants`)).status).toBe(401);

    const { serviceToken } = await setUpProvider(
      gw,
      { name: 'down', mode: 'simple', prefixUrl: upstream.url },
      { AppKey: 'ak-down', AppSecret: 'as-down-secret' },
    );
    const proxied = await fetch(`${gw.outboundUrl}/v1/proxy/down/x`, {
      headers: { authorization: `Bearer ${serviceToken}` },
    });
    expect(proxied.status).toBe(502);
    expect(lines.find((l) => l.requestId === proxied.headers.get('x-request-id'))).toMatchObject({
      level: 40,
      msg: 'outbound request',
      provider: 'down',
      status: 502,
    });

    expect(
      lines.filter(
        (l) =>
          (l.msg === 'inbound call' || l.msg === 'admin request' || l.msg === 'outbound request') &&
          l.level === 30,
      ),
    ).toEqual([]);
    expect(lines.find((l) => l.requestId === refused.headers['x-request-id'])).toMatchObject({
      level: 40,
      msg: 'inbound call failed',
      status: 502,
    });
  });
});
