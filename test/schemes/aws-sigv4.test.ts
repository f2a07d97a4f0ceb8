/**
 * scripts-examples/aws-sigv4 proven two ways, neither of them keygate's:
 * - AWS's published Signature V4 test suite (vectors.json: get-vanilla and friends, from
 *   https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html as kept in
 *   awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<case>/header-signed-request.txt), replayed
 *   through `keygate script test` with the suite's credentials, host and X-Amz-Date;
 * - an upstream on port 0 that recomputes every request's signature with AWS's own signer,
 *   @smithy/signature-v4 (the one inside the AWS SDK for JavaScript v3), from what it received.
 */
import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { json, type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { callProxy, dryRun, exampleConfig, exampleVectors, headerOf } from './helpers.ts';

interface SigV4Vectors {
  credentials: { accessKeyId: string; secretAccessKey: string; region: string; service: string };
  prefixUrl: string;
  amzDate: string;
  cases: Array<{
    name: string;
    method: string;
    path: string;
    query: Array<[string, string]>;
    sessionToken?: string;
    authorization: string;
  }>;
}

const vectors = exampleVectors<SigV4Vectors>('aws-sigv4');

/** node:crypto behind the hash interface @smithy/signature-v4 takes (what @aws-crypto/sha256-js provides in the SDK). */
class NodeSha256 {
  readonly #secret: Uint8Array | string | undefined;
  #hash: Hash | Hmac;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret =
      secret === undefined || typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength)
          : new Uint8Array(secret);
    this.#hash = this.#fresh();
  }

  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }

  update(data: Uint8Array): void {
    this.#hash.update(data);
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }

  reset(): void {
    this.#hash = this.#fresh();
  }
}

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

/**
 * Verifies a received request the way an AWS service does: the headers named in SignedHeaders, the
 * path and query as received, the body bytes, recomputed by @smithy/signature-v4.
 */
async function verifyWithSmithy(req: ReceivedRequest, creds: Credentials): Promise<string | null> {
  const authorization = String(req.headers.authorization ?? '');
  const m = AUTHORIZATION.exec(authorization);
  if (!m) return `malformed Authorization: ${authorization}`;
  if (m[1] !== creds.accessKeyId || m[3] !== creds.region || m[4] !== creds.service)
    return 'wrong credential scope';
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!d) return 'no X-Amz-Date';
  const signingDate = new Date(`${d[1]}-${d[2]}-${d[3]}T${d[4]}:${d[5]}:${d[6]}Z`);

  const headers: Record<string, string> = {};
  for (const name of m[5]!.split(';')) {
    const value = req.headers[name];
    if (value === undefined) return `signed header ${name} was not received`;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query: Record<string, string | string[]> = {};
  for (const part of (q < 0 ? '' : req.url.slice(q + 1)).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = decodeURIComponent(eq < 0 ? '' : part.slice(eq + 1));
    const prev = query[name];
    query[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      sessionToken: creds.sessionToken,
    },
    region: creds.region,
    service: creds.service,
    sha256: NodeSha256,
    applyChecksum: false,
    uriEscapePath: creds.service !== 's3',
  });
  const [hostname, port] = String(req.headers.host).split(':');
  const signed = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: hostname!,
      port: port ? Number(port) : undefined,
      path,
      query,
      headers,
      body: req.body.length > 0 ? req.body : undefined,
    },
    { signingDate },
  );
  const expected = Buffer.from(String(signed.headers.authorization));
  const got = Buffer.from(authorization);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) {
    return `signature mismatch: expected ${expected.toString()}`;
  }
  return null;
}

describe('aws-sigv4: the AWS Signature V4 test suite, replayed with `keygate script test`', () => {
  let gw: TestGateway;
  let tenant: string;
  let tenantWithToken: string;
  const config = exampleConfig('aws-sigv4', { prefixUrl: vectors.prefixUrl });
  const secrets = {
    AppKey: vectors.credentials.accessKeyId,
    AppSecret: vectors.credentials.secretAccessKey,
    Region: vectors.credentials.region,
    Service: vectors.credentials.service,
  };
  const notSensitive = ['Region', 'Service'];

  beforeAll(async () => {
    gw = await startTestGateway();
    ({ tenant } = await setUpProvider(gw, config, secrets, { notSensitive }));
    const token = vectors.cases.find((c) => c.sessionToken)!.sessionToken!;
    ({ tenant: tenantWithToken } = await setUpProvider(
      gw,
      config,
      { ...secrets, SessionToken: token },
      { notSensitive },
    ));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', async (_name, vector) => {
    const result = await dryRun(gw, vector.sessionToken ? tenantWithToken : tenant, 'aws-sigv4', {
      method: vector.method,
      path: vector.path,
      query: Object.fromEntries(vector.query),
      headers: { 'X-Amz-Date': vectors.amzDate },
    });
    expect(headerOf(result.request.headers, 'authorization')).toBe(vector.authorization);
    expect(headerOf(result.request.headers, 'x-amz-date')).toBe(vectors.amzDate);
  });
});

describe('aws-sigv4 through the proxy, verified upstream by @smithy/signature-v4', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  const creds: Credentials = {
    accessKeyId: 'AKIAKEYGATETEST00001',
    secretAccessKey: 'kgTestSecret/With+Symbols=AndMore0123456789',
    region: 'eu-central-1',
    service: 'lambda',
  };
  let verifyAs: Credentials = creds;
  const failures: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream(async (req, res) => {
      const problem = await verifyWithSmithy(req, verifyAs);
      if (problem) {
        failures.push(problem);
        json(res, 403, { message: problem });
        return;
      }
      json(res, 200, { ok: true, method: req.method, url: req.url, body: req.body.toString('utf8') });
    });
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function provider(c: Credentials, extra: Record<string, string> = {}): Promise<string> {
    const { serviceToken } = await setUpProvider(
      gw,
      exampleConfig('aws-sigv4', { prefixUrl: upstream.url }),
      { AppKey: c.accessKeyId, AppSecret: c.secretAccessKey, Region: c.region, Service: c.service, ...extra },
      { notSensitive: ['Region', 'Service'] },
    );
    return serviceToken;
  }

  it('signs GET, POST and PUT requests with awkward paths, queries and bodies the way AWS checks them', async () => {
    verifyAs = creds;
    const token = await provider(creds);
    const calls: Array<{ method: string; path: string; headers?: Record<string, string>; body?: string }> = [
      {
        method: 'GET',
        path: '/2015-03-31/functions?MaxItems=10&Marker=a%20b%2Bc&FunctionVersion=ALL&empty=',
      },
      { method: 'GET', path: '/2015-03-31/functions/my%20function/configuration?Qualifier=%E2%82%AC%2F1' },
      { method: 'GET', path: '/caf%C3%A9/x?z=1&a=2&a-b=%21%27%28%29%2A&%E1%88%B4=bar' },
      {
        method: 'POST',
        path: '/2015-03-31/functions/my-function/invocations',
        headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
        body: JSON.stringify({ order: 42, note: 'snowman ☃ and "quotes"' }),
      },
      {
        method: 'PUT',
        path: '/2015-03-31/functions/my-function/concurrency',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: 'ReservedConcurrentExecutions=5&note=a+b%26c',
      },
    ];
    for (const call of calls) {
      const reply = await callProxy(gw, token, 'aws-sigv4', call.path, call);
      expect(failures).toEqual([]);
      expect(reply.status, reply.text).toBe(200);
      expect((reply.json as { method: string }).method).toBe(call.method);
    }
    // The body arrived byte for byte as the caller sent it (the script pinned it before hashing).
    const put = upstream.received.at(-1)!;
    expect(put.body.toString('utf8')).toBe('ReservedConcurrentExecutions=5&note=a+b%26c');
    expect(put.headers['content-type']).toBe('application/x-www-form-urlencoded; charset=utf-8');
  });

  it('signs temporary credentials (X-Amz-Security-Token) and S3 (single-encoded path, X-Amz-Content-Sha256)', async () => {
    const withToken = { ...creds, sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDHKeyGateSessionToken=' };
    verifyAs = withToken;
    const tokenReply = await callProxy(
      gw,
      await provider(creds, { SessionToken: withToken.sessionToken }),
      'aws-sigv4',
      '/2015-03-31/functions',
    );
    expect(failures).toEqual([]);
    expect(tokenReply.status, tokenReply.text).toBe(200);
    expect(upstream.received.at(-1)!.headers['x-amz-security-token']).toBe(withToken.sessionToken);

    const s3 = { ...creds, service: 's3' };
    verifyAs = s3;
    const s3Token = await provider(s3);
    const put = await callProxy(gw, s3Token, 'aws-sigv4', '/bucket/photos/caf%C3%A9%20au%20lait.jpg', {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: 'hello, S3',
    });
    expect(failures).toEqual([]);
    expect(put.status, put.text).toBe(200);
    const received = upstream.received.at(-1)!;
    expect(received.headers['x-amz-content-sha256']).toBe(
      createHash('sha256').update('hello, S3').digest('hex'),
    );
    expect(String(received.headers.authorization)).toContain(
      'SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,',
    );
  });

  it('the upstream really checks: a wrong secret access key is refused', async () => {
    verifyAs = creds;
    const token = await provider({ ...creds, secretAccessKey: 'not-the-right-secret' });
    const reply = await callProxy(gw, token, 'aws-sigv4', '/2015-03-31/functions');
    expect(reply.status).toBe(403);
    expect(failures.pop()).toMatch(/^signature mismatch/);
    expect(failures).toEqual([]);
  });
});
