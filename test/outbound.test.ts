/** The outbound proxy's modes and its answers to bad input, against real upstreams on port 0. */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { applyProviderVersion } from '../src/services/providers.ts';
import { createServiceToken, revokeServiceToken } from '../src/services/tokens.ts';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

const sha256Upper = (s: string) => createHash('sha256').update(s).digest('hex').toUpperCase();

/** An independent reading of DESIGN.md's buildSignStr, to check keygate's signatures against. */
function expectedSign(fields: Record<string, unknown>, secret: string): string {
  const parts = Object.keys(fields)
    .filter((k) => k !== 'sign' && fields[k] !== '' && fields[k] !== null && fields[k] !== undefined)
    .sort()
    .map((k) => `${k}=${typeof fields[k] === 'object' ? JSON.stringify(fields[k]) : fields[k]}`);
  return sha256Upper(parts.join('&') + secret);
}

let gw: TestGateway;
let upstream: TestUpstream;

beforeAll(async () => {
  gw = await startTestGateway();
  upstream = await startUpstream((req, res) => {
    if (req.url.startsWith('/slow')) return; // never answers
    if (req.url.startsWith('/gzip')) {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        connection: 'x-private',
        'x-private': 'p',
      });
      res.end(gzipSync(JSON.stringify({ zipped: true })));
      return;
    }
    if (req.url.startsWith('/echo-secret')) {
      const secret = 'S3cret-Value-987';
      json(
        res,
        200,
        {
          raw: secret,
          b64: Buffer.from(secret).toString('base64'),
          hex: Buffer.from(secret).toString('hex'),
        },
        { 'x-leak': secret },
      );
      return;
    }
    json(res, 200, { ok: true, method: req.method, url: req.url });
  });
});
afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

const proxy = (provider: string, path: string, token: string | undefined, init: RequestInit = {}) =>
  fetch(`${gw.outboundUrl}/v1/proxy/${provider}${path}`, {
    ...init,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(init.headers as Record<string, string>),
    },
  });

async function problem(res: Response) {
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = (await res.json()) as { code: string; detail: string; status: number; requestId: string };
  expect(res.headers.get('keygate-error')).toBe(body.code);
  expect(body.status).toBe(res.status);
  return body;
}

describe('simple mode', () => {
  let token: string;
  beforeAll(async () => {
    ({ serviceToken: token } = await setUpProvider(
      gw,
      { name: 'simple-co', mode: 'simple', prefixUrl: upstream.url },
      { AppKey: 'ak-1', AppSecret: 'as-very-secret' },
      { notSensitive: ['AppKey'] },
    ));
  });

  it('adds appKey, timestamp and the sign to a JSON body', async () => {
    const res = await proxy('simple-co', '/pay?x=1', token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 12, memo: 'a b', empty: '', nested: { z: 1 } }),
    });
    expect(res.status).toBe(200);
    const got = upstream.received.at(-1)!;
    expect(got.url).toBe('/pay?x=1');
    const body = JSON.parse(got.body.toString()) as Record<string, unknown>;
    expect(body.appKey).toBe('ak-1');
    expect(Math.abs(Number(body.timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(body.sign).toBe(expectedSign(body, 'as-very-secret'));
    expect(got.headers.authorization).toBeUndefined();
  });

  it('keeps a timestamp the caller sent and signs the query of a bodiless GET', async () => {
    const res = await proxy('simple-co', '/items?b=2&a=1&timestamp=1700000000', token);
    expect(res.status).toBe(200);
    const got = upstream.received.at(-1)!;
    const q = Object.fromEntries(new URL(got.url, 'http://x').searchParams);
    expect(q.timestamp).toBe('1700000000');
    expect(q.appKey).toBe('ak-1');
    expect(q.sign).toBe(expectedSign(q, 'as-very-secret'));
    expect(got.body.length).toBe(0);
  });

  it.each(['/%2e%2e/other-tenant/x', '/a/../x', '/a/%2E/x', '/a/..%2fx'])(
    'refuses the dot segments in %s with 400 and sends nothing (the URL parser would resolve them)',
    async (path) => {
      const before = upstream.received.length;
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        // node:http sends a `path` option as written; a URL (or fetch()) would resolve the dots first.
        const { hostname, port } = new URL(gw.outboundUrl);
        const req = httpRequest(
          {
            hostname,
            port,
            path: `/v1/proxy/simple-co${path}`,
            headers: { authorization: `Bearer ${token}` },
          },
          (r) => {
            let body = '';
            r.on('data', (c) => (body += c));
            r.on('end', () => resolve({ status: r.statusCode!, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'KG_BAD_REQUEST' });
      expect(upstream.received.length).toBe(before);
    },
  );

  it('answers a malformed JSON body with 400 and sends nothing', async () => {
    const before = upstream.received.length;
    const res = await proxy('simple-co', '/pay', token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"amount": 12,',
    });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe('KG_BAD_REQUEST');
    expect(upstream.received.length).toBe(before);
  });

  it('strips hop-by-hop headers both ways, sets Host, and decodes content-encoding', async () => {
    // fetch() refuses to send Connection; node:http sends exactly what we say.
    const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
      (resolve, reject) => {
        const req = httpRequest(
          `${gw.outboundUrl}/v1/proxy/simple-co/gzip`,
          {
            headers: {
              authorization: `Bearer ${token}`,
              connection: 'keep-alive, x-drop-me',
              'x-drop-me': '1',
              'x-keep': 'yes',
              'accept-encoding': 'gzip',
            },
          },
          (r) => {
            let body = '';
            r.on('data', (c) => (body += c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ zipped: true });
    expect(res.headers['x-private']).toBeUndefined();
    expect(res.headers['content-encoding']).toBeUndefined();
    const got = upstream.received.at(-1)!;
    expect(got.headers['x-drop-me']).toBeUndefined();
    expect(got.headers['x-keep']).toBe('yes');
    expect(got.headers.host).toBe(upstream.host);
    expect(got.headers['accept-encoding']).not.toBe('gzip');
    expect(got.headers['x-request-id']).toBe(res.headers['x-request-id']);
  });
});

describe('secret masking', () => {
  it('masks a sensitive secret in the answer verbatim, base64 and hex', async () => {
    const { serviceToken } = await setUpProvider(
      gw,
      { name: 'leaky', mode: 'simple', prefixUrl: upstream.url },
      { AppKey: 'ak', AppSecret: 'S3cret-Value-987' },
      { notSensitive: ['AppKey'] },
    );
    const res = await proxy('leaky', '/echo-secret', serviceToken);
    const text = await res.text();
    expect(res.status).toBe(200);
    for (const form of [
      'S3cret-Value-987',
      Buffer.from('S3cret-Value-987').toString('base64'),
      Buffer.from('S3cret-Value-987').toString('hex'),
    ]) {
      expect(text).not.toContain(form);
    }
    expect(res.headers.get('x-leak')).not.toContain('S3cret');
  });
});

describe('token mode', () => {
  let tokenRequests = 0;
  let issued = '';
  let api: TestUpstream;
  let token: string;
  beforeAll(async () => {
    api = await startUpstream((req, res) => {
      if (req.url === '/oauth/token') {
        tokenRequests++;
        const basic = Buffer.from(
          String(req.headers.authorization).replace('Basic ', ''),
          'base64',
        ).toString();
        const form = new URLSearchParams(req.body.toString());
        if (basic !== 'client-1:client%2Fsecret' || form.get('grant_type') !== 'client_credentials') {
          json(res, 401, { error: 'invalid_client' });
          return;
        }
        issued = `tok-${tokenRequests}`;
        json(res, 200, { access_token: issued, token_type: 'Bearer', expires_in: 3600 });
        return;
      }
      if (req.headers.authorization !== `Bearer ${issued}`) {
        json(res, 401, { error: 'expired' });
        return;
      }
      json(res, 200, { ok: true });
    });
    ({ serviceToken: token } = await setUpProvider(
      gw,
      {
        name: 'oauth-co',
        mode: 'token',
        prefixUrl: api.url,
        tokenUrl: `${api.url}/oauth/token`,
        token: { sign: false },
      },
      { AppKey: 'client-1', AppSecret: 'client/secret' },
    ));
  });
  afterAll(() => api.close());

  it('fetches a client-credentials token once, and drops it on a 401', async () => {
    expect((await proxy('oauth-co', '/a', token)).status).toBe(200);
    expect((await proxy('oauth-co', '/b', token)).status).toBe(200);
    expect(tokenRequests).toBe(1);
    issued = 'rotated-by-provider';
    expect((await proxy('oauth-co', '/c', token)).status).toBe(401);
    expect((await proxy('oauth-co', '/d', token)).status).toBe(200);
    expect(tokenRequests).toBe(2);
  });
});

describe('bad input and failures', () => {
  let token: string;
  let tenantId: string;
  beforeAll(async () => {
    ({ serviceToken: token, tenantId } = await setUpProvider(
      gw,
      { name: 'plain', mode: 'simple', prefixUrl: upstream.url, timeoutMs: 300 },
      { AppKey: 'k', AppSecret: 'secret-abc' },
    ));
  });

  it('401 for a missing or an invalid service token', async () => {
    const missing = await proxy('plain', '/x', undefined);
    expect(missing.status).toBe(401);
    expect((await problem(missing)).code).toBe('KG_UNAUTHENTICATED');
    const invalid = await proxy('plain', '/x', 'kgs_not-a-real-token');
    expect(invalid.status).toBe(401);
    expect((await problem(invalid)).code).toBe('KG_UNAUTHENTICATED');
  });

  it('a revoked service token stops working at once', async () => {
    const created = await createServiceToken(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      name: 'to-revoke',
    });
    expect((await proxy('plain', '/x', created.token)).status).toBe(200);
    await revokeServiceToken(gw.services.ctx, CLI_ACTOR, tenantId, created.id);
    const after = await proxy('plain', '/x', created.token);
    expect(after.status).toBe(401);
    expect((await problem(after)).code).toBe('KG_UNAUTHENTICATED');
  });

  it('413 for a body over the limit, declared or streamed, and the next request still works', async () => {
    const before = upstream.received.length;
    const limit = 10 * 1024 * 1024;
    const declared = await proxy('plain', '/big', token, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(limit + 1),
    });
    expect(declared.status).toBe(413);
    expect((await problem(declared)).code).toBe('KG_PAYLOAD_TOO_LARGE');

    // Chunked, so no Content-Length to refuse early: the limit applies as the body streams in.
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${gw.outboundUrl}/v1/proxy/plain/big`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent <= limit) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).code).toBe('KG_PAYLOAD_TOO_LARGE');
    expect(upstream.received.length).toBe(before);
    expect((await proxy('plain', '/after-413', token)).status).toBe(200);
  });

  it('404 for an unknown provider', async () => {
    const res = await proxy('nope', '/x', token);
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe('KG_PROVIDER_NOT_FOUND');
  });

  it('a secret that is not set is named, never valued', async () => {
    const { serviceToken } = await setUpProvider(
      gw,
      { name: 'half-set', mode: 'simple', prefixUrl: upstream.url },
      { AppKey: 'only-the-key' },
    );
    const res = await proxy('half-set', '/x', serviceToken);
    expect(res.status).toBe(500);
    const body = await problem(res);
    expect(body.code).toBe('KG_SECRET_MISSING');
    expect(body.detail).toContain('AppSecret');
    expect(JSON.stringify(body)).not.toContain('only-the-key');
  });

  it('504 when the upstream hangs past timeoutMs, 502 when it refuses', async () => {
    const slow = await proxy('plain', '/slow', token);
    expect(slow.status).toBe(504);
    expect((await problem(slow)).code).toBe('KG_UPSTREAM_TIMEOUT');

    const dead = await startUpstream(() => {});
    const deadUrl = dead.url;
    await dead.close();
    await applyProviderVersion(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      config: { name: 'refusing', mode: 'simple', prefixUrl: deadUrl },
    });
    await gw.services.ctx.secrets.set(tenantId, 'refusing', 'AppKey', 'k');
    await gw.services.ctx.secrets.set(tenantId, 'refusing', 'AppSecret', 's');
    const refused = await proxy('refusing', '/x', token);
    expect(refused.status).toBe(502);
    expect((await problem(refused)).code).toBe('KG_UPSTREAM_UNREACHABLE');
  });

  it('rejects a script with a syntax error at apply time, naming line and column', async () => {
    const attempt = applyProviderVersion(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      config: {
        name: 'broken',
        mode: 'script',
        prefixUrl: upstream.url,
        request: 'function (reqHeaders) {\n  var x = ;\n}',
      },
    });
    await expect(attempt).rejects.toMatchObject({ code: 'KG_SCRIPT_SYNTAX', extra: { line: 2 } });
    await expect(attempt).rejects.toThrow(/line 2/);
  });
});

describe('scripts that fail at request time', () => {
  let token: string;
  let gw: TestGateway;
  // A CPU budget large enough for the memory hog to reach the memory limit first.
  afterAll(() => gw.close());
  const proxy = (provider: string, path: string, token: string) =>
    fetch(`${gw.outboundUrl}/v1/proxy/${provider}${path}`, { headers: { authorization: `Bearer ${token}` } });
  beforeAll(async () => {
    gw = await startTestGateway({ env: { KEYGATE_SCRIPT_CPU_MS: '1000' } });
    const scripts = {
      throws: 'function (h) { throw new Error("provider rule violated"); }',
      loops: 'function (h) { while (true) {} }',
      hog: 'function (h) { var a = []; for (var i = 0; ; i++) { a.push("x".repeat(1 << 20) + i); a[i] = a[i].toUpperCase(); } }',
      egress: 'function (h) { http_post_json("http://169.254.169.254/latest/meta-data", {}, {}); }',
      fine: 'function (h, p, b) { h.set("x-signed", "yes"); }',
    };
    const first = await setUpProvider(gw, {
      name: 'fine',
      mode: 'script',
      prefixUrl: upstream.url,
      request: scripts.fine,
    });
    token = first.serviceToken;
    for (const [name, request] of Object.entries(scripts)) {
      if (name === 'fine') continue;
      await applyProviderVersion(gw.services.ctx, CLI_ACTOR, {
        tenant: first.tenantId,
        config: { name, mode: 'script', prefixUrl: upstream.url, request },
      });
    }
  });

  it.each([
    ['throws', 'KG_SCRIPT_ERROR'],
    ['loops', 'KG_SCRIPT_TIMEOUT'],
    ['hog', 'KG_SCRIPT_MEMORY'],
    ['egress', 'KG_EGRESS_DENIED'],
  ])('%s -> 502 %s, while other requests on the node keep working', async (name, code) => {
    const before = upstream.received.length;
    const [bad, good] = await Promise.all([proxy(name, '/x', token), proxy('fine', '/ok', token)]);
    expect(bad.status).toBe(502);
    expect((await problem(bad)).code).toBe(code);
    expect(good.status).toBe(200);
    expect(upstream.received.at(-1)!.headers['x-signed']).toBe('yes');
    expect(upstream.received.length).toBe(before + 1);
    // and the failing provider recovers for its next request
    const again = await proxy(name, '/x', token);
    expect(again.status).toBe(502);
  });
});

describe('a script that builds a denied host from a secret', () => {
  const SECRET = 'Kq7-SecretValue_81zP';
  const forms = [
    SECRET,
    SECRET.toLowerCase(),
    Buffer.from(SECRET).toString('hex'),
    Buffer.from(SECRET).toString('base64url').toLowerCase(),
  ];

  it.each([
    [
      'hex, in the request URI',
      'reqHeaders.setURI("http://" + hex_encode(secret("AppSecret")) + ".invalid/x");',
    ],
    [
      'base64url, in the request URI',
      'reqHeaders.setURI("http://" + base64url_encode(secret("AppSecret")) + ".invalid/x");',
    ],
    [
      'as it is, in http_post_json',
      'http_post_json("http://" + secret("AppSecret") + ".invalid/t", {}, {});',
    ],
  ])('gets 502 KG_EGRESS_DENIED that never shows it (%s)', async (_, body) => {
    const { serviceToken } = await setUpProvider(
      gw,
      {
        name: 'leaky',
        mode: 'script',
        prefixUrl: upstream.url,
        request: `function (reqHeaders) { ${body} }`,
      },
      { AppSecret: SECRET },
    );
    const res = await fetch(`${gw.outboundUrl}/v1/proxy/leaky/x`, {
      headers: { authorization: `Bearer ${serviceToken}` },
    });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'KG_EGRESS_DENIED' });
    expect(text).toContain('****');
    for (const form of forms) expect(text.toLowerCase()).not.toContain(form.toLowerCase());
  });
});

describe('upstream answers above the size limit', () => {
  it('fail the request with 502 KG_UPSTREAM_TOO_LARGE, and the gateway keeps serving', async () => {
    const small = await startTestGateway({ env: { KEYGATE_MAX_UPSTREAM_RESPONSE_BYTES: '65536' } });
    const big = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.url.startsWith('/big') ? 'x'.repeat(200_000) : 'small');
    });
    try {
      const { serviceToken } = await setUpProvider(
        small,
        { name: 'bulky', mode: 'simple', prefixUrl: big.url },
        { AppKey: 'k', AppSecret: 's' },
      );
      const call = (path: string) =>
        fetch(`${small.outboundUrl}/v1/proxy/bulky${path}`, {
          headers: { authorization: `Bearer ${serviceToken}` },
        });
      const tooLarge = await call('/big');
      expect(tooLarge.status).toBe(502);
      expect((await problem(tooLarge)).code).toBe('KG_UPSTREAM_TOO_LARGE');
      const fine = await call('/small');
      expect(fine.status).toBe(200);
      expect(await fine.text()).toBe('small');
    } finally {
      await small.close();
      await big.close();
    }
  });
});

describe("the response script and the answer's content type", () => {
  it.each([
    ['application/json', '{"code":0}', '{"code":0,"seen":true}'],
    ['text/plain;charset=utf-8', ' {"code":0}', '{"code":0,"seen":true}'],
    ['(none)', '{"code":0}', '{"code":0,"seen":true}'],
    ['(none)', '[1]', '[1]'],
    ['text/html', '<p>{"code":0}</p>', '<p>{"code":0}</p>'],
    ['text/plain', '{not json', '{not json'],
    ['application/octet-stream', '{"code":0}', '{"code":0}'],
  ])('%s %s -> %s', async (contentType, body, expected) => {
    const answering = await startUpstream((_req, res) => {
      res.writeHead(200, contentType === '(none)' ? {} : { 'content-type': contentType });
      res.end(body);
    });
    try {
      const { serviceToken } = await setUpProvider(gw, {
        name: 'typed-answers',
        mode: 'script',
        prefixUrl: answering.url,
        request: 'function (h) { h.set("x-a", "1"); }',
        // respBody is parsed JSON when the answer is JSON by type, or untyped / text that parses.
        response:
          'function (respBody) { if (respBody !== null && !Array.isArray(respBody)) respBody.seen = true; log(respBody === null); }',
      });
      const res = await proxy('typed-answers', '/x', serviceToken);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(expected);
    } finally {
      await answering.close();
    }
  });
});

describe('bodies signing leaves alone', () => {
  const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff, 0x00, 0x80, 0x0d, 0x0a]);
  const cases: Array<[string, Record<string, unknown>, string, Buffer]> = [
    [
      'a binary upload, through a script that signs headers only',
      { mode: 'script', request: 'function (h, p, b) { h.set("x-len", String(b.raw().length)); }' },
      'application/octet-stream',
      binary,
    ],
    [
      'JSON with a big integer and odd spacing, in token mode without signing',
      { mode: 'token', tokenUrl: 'TOKEN_URL', token: { sign: false } },
      'application/json',
      Buffer.from('{"id": 12345678901234567890, "p": 1.10}'),
    ],
    [
      'a binary upload, in token mode without signing',
      { mode: 'token', tokenUrl: 'TOKEN_URL', token: { sign: false } },
      'application/octet-stream',
      binary,
    ],
  ];

  it.each(cases)('%s reaches the upstream byte for byte', async (_, mode, contentType, body) => {
    const api = await startUpstream((req, res) => {
      if (req.url === '/oauth/token') json(res, 200, { access_token: 't-1', expires_in: 3600 });
      else json(res, 200, { ok: true });
    });
    try {
      const config: Record<string, unknown> = { ...mode, name: 'bytes', prefixUrl: api.url };
      if (config.tokenUrl) config.tokenUrl = `${api.url}/oauth/token`;
      const { serviceToken } = await setUpProvider(gw, config, { AppKey: 'k', AppSecret: 's' });
      const res = await proxy('bytes', '/upload', serviceToken, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      expect(res.status, await res.text()).toBe(200);
      const got = api.received.at(-1)!;
      expect(got.url).toBe('/upload');
      expect(got.body.equals(body), got.body.toString('hex')).toBe(true);
      expect(got.headers['content-type']).toBe(contentType);
    } finally {
      await api.close();
    }
  });

  it('a raw body a script replaces goes out as the script left it', async () => {
    const { serviceToken } = await setUpProvider(gw, {
      name: 'rewrites',
      mode: 'script',
      prefixUrl: upstream.url,
      request: 'function (h, p, b) { b.setRaw("<signed>" + b.raw() + "</signed>"); }',
    });
    const res = await proxy('rewrites', '/x', serviceToken, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(res.status).toBe(200);
    expect(upstream.received.at(-1)!.body.toString()).toBe('<signed>hello</signed>');
  });
});

describe('answers without a body', () => {
  let bare: TestUpstream;
  let serviceToken: string;
  beforeAll(async () => {
    bare = await startUpstream((req, res) => {
      const status = Number(new URL(req.url, 'http://x').pathname.split('/')[1]);
      const headers: Record<string, string> = { etag: '"v1"' };
      if (req.url.includes('gzip')) headers['content-encoding'] = 'gzip';
      if (req.url.includes('zstd')) headers['content-encoding'] = 'zstd';
      if (req.method === 'HEAD' || status === 304) headers['content-length'] = '1234';
      res.writeHead(status, headers);
      res.end(status === 200 && req.method !== 'HEAD' ? 'not really zstd' : undefined);
    });
    ({ serviceToken } = await setUpProvider(
      gw,
      { name: 'bare', mode: 'simple', prefixUrl: bare.url },
      { AppKey: 'k', AppSecret: 's' },
    ));
  });
  afterAll(() => bare.close());

  it.each([
    ['HEAD', '/200/gzip'],
    ['GET', '/204/gzip'],
    ['GET', '/304'],
  ])('%s %s keeps the upstream status, sends no body and no made-up Content-Length', async (method, path) => {
    const res = await proxy('bare', path, serviceToken, { method });
    expect(res.status).toBe(Number(path.split('/')[1]));
    expect(res.headers.get('content-length')).toBeNull();
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('etag')).toBe('"v1"');
    expect(await res.text()).toBe('');
  });

  it("an encoding keygate cannot decode is the upstream's fault: 502, not 400", async () => {
    const res = await proxy('bare', '/200/zstd', serviceToken);
    expect(res.status).toBe(502);
    expect((await problem(res)).code).toBe('KG_UPSTREAM_UNDECODABLE');
  });
});

describe('headers a script sets', () => {
  it('reach the upstream once, whatever their letter case, and a script-chosen Content-Type wins', async () => {
    const { serviceToken } = await setUpProvider(gw, {
      name: 'header-case',
      mode: 'script',
      prefixUrl: upstream.url,
      request:
        'function (h, p, b) { h.set("Content-Type", "application/json; charset=utf-8"); h.set("X-Sig", "1"); b.set("signed", true); }',
    });
    const res = await proxy('header-case', '/h', serviceToken, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(200);
    const got = upstream.received.at(-1)!;
    const contentTypes = got.rawHeaders.filter(
      (_, i) => i % 2 === 0 && got.rawHeaders[i]!.toLowerCase() === 'content-type',
    );
    expect(contentTypes).toHaveLength(1);
    expect(got.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(got.headers['x-sig']).toBe('1');
    expect(JSON.parse(got.body.toString())).toEqual({ a: 1, signed: true });
  });
});
