/**
 * The proxy's JSON logs (an access line per request with its request id, script log() lines, never
 * a secret) and its request metrics, whose provider label a caller cannot make up.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { captureLogLines } from './helpers/log-lines.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

const SECRET = 'Sens1tive-Aes-Key!';

describe('outbound logs', () => {
  const log = captureLogLines();
  const { lines, raw } = log;
  let gw: TestGateway;
  let upstream: TestUpstream;
  let token: string;

  beforeAll(async () => {
    gw = await startTestGateway({ logTo: log.sink });
    upstream = await startUpstream((_req, res) => json(res, 200, { ok: true }));
    ({ serviceToken: token } = await setUpProvider(
      gw,
      {
        name: 'logged',
        mode: 'script',
        prefixUrl: upstream.url,
        request:
          'function (h, p, b, AppKey, AesKey) { log("signing with", AesKey, base64_encode(AesKey)); h.set("x-sig", sha256(AesKey)); }',
      },
      { AppKey: 'app', AesKey: SECRET },
    ));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('writes script log() lines and failures as JSON with the request id, secrets masked', async () => {
    const ok = await fetch(`${gw.outboundUrl}/v1/proxy/logged/x`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(200);
    const failed = await fetch(`${gw.outboundUrl}/v1/proxy/nope/x`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(failed.status).toBe(404);
    const failedId = ((await failed.json()) as { requestId: string }).requestId;

    const scriptLine = lines.find((l) => l.msg === 'script log');
    expect(scriptLine).toMatchObject({
      requestId: ok.headers.get('x-request-id'),
      provider: 'logged',
      kind: 'request',
    });
    expect(scriptLine!.lines).toEqual(['signing with **** ****']);
    expect(lines.find((l) => l.msg === 'outbound request failed')).toMatchObject({
      requestId: failedId,
      level: 30,
      method: 'GET',
      provider: 'nope',
      status: 404,
      code: 'KG_PROVIDER_NOT_FOUND',
    });
    const access = lines.find(
      (l) => l.msg === 'outbound request' && l.requestId === ok.headers.get('x-request-id'),
    );
    expect(access).toMatchObject({ level: 30, method: 'GET', provider: 'logged', status: 200 });
    expect(access!.ms).toEqual(expect.any(Number));
    for (const line of raw) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(Buffer.from(SECRET).toString('base64'));
      expect(line).not.toContain(token);
    }
  });

  it('labels request metrics with loaded providers only: made-up names add no series', async () => {
    const made = ['rnd-1', 'rnd-2', 'x'.repeat(3000), '%22%0A%7D'];
    for (const name of made) {
      const anonymous = await fetch(`${gw.outboundUrl}/v1/proxy/${name}/x`);
      expect(anonymous.status).toBe(401);
      const unknown = await fetch(`${gw.outboundUrl}/v1/proxy/${name}/x`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(unknown.status).toBe(404);
      expect(unknown.headers.get('keygate-error')).toBe('KG_PROVIDER_NOT_FOUND');
    }
    const known = await fetch(`${gw.outboundUrl}/v1/proxy/logged/x`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(known.status).toBe(200);

    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const outboundProviders = new Set(
      [...metrics.matchAll(/keygate_http_requests_total\{listener="outbound",provider="([^"]*)"/g)].map(
        (m) => m[1],
      ),
    );
    expect(outboundProviders).toEqual(new Set(['logged', '-']));
    expect(metrics).toMatch(
      /keygate_http_requests_total\{listener="outbound",provider="-",status="401"\} [4-9]/,
    );
  });

  it('counts and logs a request the HTTP parser refuses, like any other answer', async () => {
    const port = Number(new URL(gw.outboundUrl).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => {
        text += String(chunk);
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const requestId = /x-request-id: (\S+)/.exec(answer)?.[1];
    expect(lines.find((l) => l.requestId === requestId)).toMatchObject({
      msg: 'request refused by the HTTP parser',
      listener: 'outbound',
      status: 400,
      code: 'KG_BAD_REQUEST',
    });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /keygate_http_requests_total\{listener="outbound",provider="-",status="400"\} [1-9]/,
    );
  });
});
