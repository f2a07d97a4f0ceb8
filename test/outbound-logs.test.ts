/** The proxy's JSON logs: one request id per request, script log() lines, and never a secret. */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

const SECRET = 'Sens1tive-Aes-Key!';

describe('outbound logs', () => {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  let gw: TestGateway;
  let upstream: TestUpstream;
  let token: string;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) {
          raw.push(line);
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    gw = await startTestGateway({ logTo: sink });
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
      code: 'KG_PROVIDER_NOT_FOUND',
    });
    for (const line of raw) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(Buffer.from(SECRET).toString('base64'));
      expect(line).not.toContain(token);
    }
  });
});
