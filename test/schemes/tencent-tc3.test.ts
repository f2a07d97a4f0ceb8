/**
 * scripts-examples/tencent-tc3 proven by Tencent Cloud's own worked example (vectors.json: every
 * intermediate value of the CVM DescribeInstances example on the "Signature v3" page,
 * https://www.tencentcloud.com/document/api/213/30654):
 * - the example script reproduces the documented Authorization from the documented inputs;
 * - the upstream's verifier, written here from that page, reproduces every documented
 *   intermediate value, and then checks every request the proxy sends.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.ts';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { json, type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { callProxy, exampleConfig, exampleVectors, headerOf, problemOf } from './helpers.ts';

interface Tc3Vectors {
  secretId: string;
  secretKey: string;
  prefixUrl: string;
  host: string;
  service: string;
  timestamp: string;
  date: string;
  headers: Record<string, string>;
  contentType: string;
  payload: string;
  hashedRequestPayload: string;
  canonicalRequest: string;
  hashedCanonicalRequest: string;
  stringToSign: string;
  signature: string;
  authorization: string;
}

const vectors = exampleVectors<Tc3Vectors>('tencent-tc3');

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** TC3-HMAC-SHA256 from the "Signature v3" page, steps 1 to 4, for a POST. */
function tc3Steps(input: {
  secretKey: string;
  service: string;
  host: string;
  path: string;
  contentType: string;
  timestamp: string;
  payload: string | Buffer;
}) {
  const hashedRequestPayload = sha256Hex(input.payload);
  const canonicalRequest = [
    'POST',
    input.path,
    '',
    `content-type:${input.contentType.trim().toLowerCase()}\nhost:${input.host.toLowerCase()}\n`,
    'content-type;host',
    hashedRequestPayload,
  ].join('\n');
  const date = new Date(Number(input.timestamp) * 1000).toISOString().slice(0, 10);
  const hashedCanonicalRequest = sha256Hex(canonicalRequest);
  const stringToSign = `TC3-HMAC-SHA256\n${input.timestamp}\n${date}/${input.service}/tc3_request\n${hashedCanonicalRequest}`;
  const secretSigning = hmac(hmac(hmac(`TC3${input.secretKey}`, date), input.service), 'tc3_request');
  const signature = createHmac('sha256', secretSigning).update(stringToSign).digest('hex');
  return { hashedRequestPayload, canonicalRequest, hashedCanonicalRequest, stringToSign, date, signature };
}

/** What Tencent Cloud checks on a received request (POST, content-type;host signed). */
function verifyTc3(
  req: ReceivedRequest,
  secretId: string,
  secretKey: string,
  service: string,
): string | null {
  const auth = String(req.headers.authorization ?? '');
  const m =
    /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([a-z0-9-]+)\/tc3_request, SignedHeaders=content-type;host, Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return `malformed Authorization: ${auth}`;
  if (m[1] !== secretId || m[3] !== service) return 'wrong credential';
  const timestamp = String(req.headers['x-tc-timestamp'] ?? '');
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return 'timestamp out of window';
  const steps = tc3Steps({
    secretKey,
    service,
    host: String(req.headers.host),
    path: req.url,
    contentType: String(req.headers['content-type'] ?? ''),
    timestamp,
    payload: req.body,
  });
  if (steps.date !== m[2]) return 'credential date is not the UTC date of X-TC-Timestamp';
  const ok = timingSafeEqual(Buffer.from(steps.signature), Buffer.from(m[4]!));
  return ok ? null : 'AuthFailure.SignatureFailure';
}

describe('tencent-tc3: the documented example', () => {
  it('the verifier written from the page reproduces every published intermediate value', () => {
    const steps = tc3Steps({
      secretKey: vectors.secretKey,
      service: vectors.service,
      host: vectors.host,
      path: '/',
      contentType: vectors.contentType,
      timestamp: vectors.timestamp,
      payload: vectors.payload,
    });
    expect(steps).toEqual({
      hashedRequestPayload: vectors.hashedRequestPayload,
      canonicalRequest: vectors.canonicalRequest,
      hashedCanonicalRequest: vectors.hashedCanonicalRequest,
      stringToSign: vectors.stringToSign,
      date: vectors.date,
      signature: vectors.signature,
    });
  });

  it('the example script, in the sandbox, signs the documented request into the documented Authorization', async () => {
    // The page's payload has spaces and \u escapes; the proxy re-serializes JSON bodies, so the
    // exact bytes are handed to the script as they would arrive without a JSON content type.
    const sandbox = createSandbox();
    try {
      const script = await sandbox.compile(
        'request',
        String(exampleConfig('tencent-tc3').request),
        'tc3-vector',
      );
      const result = await script.runRequest(
        {
          method: 'POST',
          uri: '/',
          headers: {
            'content-type': vectors.contentType,
            'x-tc-timestamp': vectors.timestamp,
            ...Object.fromEntries(Object.entries(vectors.headers).map(([k, v]) => [k.toLowerCase(), v])),
          },
          query: [],
          body: { kind: 'raw', text: vectors.payload },
        },
        {
          secrets: { AppKey: vectors.secretId, AppSecret: vectors.secretKey },
          sensitiveValues: [vectors.secretKey],
          prefixUrl: vectors.prefixUrl,
          tokenUrl: '',
          token: null,
          httpPostJson: () => Promise.reject(new Error('not used')),
        },
      );
      expect(result.headers.Authorization).toBe(vectors.authorization);
      expect(headerOf(result.headers, 'X-TC-Timestamp')).toBe(vectors.timestamp);
      expect(result.body).toEqual({ kind: 'raw', text: vectors.payload });
    } finally {
      sandbox.dispose();
    }
  });
});

describe('tencent-tc3 through the proxy, verified upstream', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  const secretId = 'AKIDkeygateTestSecretId0000000000000';
  const secretKey = 'keygateTestSecretKey0000000000000';
  const failures: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      const problem = verifyTc3(req, secretId, secretKey, 'cvm');
      if (problem) {
        failures.push(problem);
        json(res, 200, { Response: { Error: { Code: 'AuthFailure.SignatureFailure', Message: problem } } });
        return;
      }
      json(res, 200, {
        Response: { TotalCount: 0, InstanceSet: [], RequestId: 'r-1', Action: req.headers['x-tc-action'] },
      });
    });
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function provider(key: string): Promise<string> {
    // The host is not <service>.tencentcloudapi.com, so the Service secret names the product.
    const { serviceToken } = await setUpProvider(
      gw,
      exampleConfig('tencent-tc3', { prefixUrl: upstream.url }),
      { AppKey: secretId, AppSecret: key, Service: 'cvm', Region: 'ap-guangzhou' },
      { notSensitive: ['Service', 'Region'] },
    );
    return serviceToken;
  }

  it('signs JSON bodies (re-serialized by the proxy, hashed as sent) and raw bodies', async () => {
    const token = await provider(secretKey);
    const action = { 'X-TC-Action': 'DescribeInstances', 'X-TC-Version': '2017-03-12' };
    const jsonReply = await callProxy(gw, token, 'tencent-tc3', '/', {
      method: 'POST',
      headers: { ...action, 'content-type': 'application/json; charset=utf-8' },
      body: '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
    });
    expect(failures).toEqual([]);
    expect(jsonReply.json).toMatchObject({ Response: { Action: 'DescribeInstances' } });
    const sent = upstream.received.at(-1)!;
    expect(sent.body.toString('utf8')).toBe(
      '{"Limit":1,"Filters":[{"Values":["未命名"],"Name":"instance-name"}]}',
    );
    expect(sent.headers['x-tc-region']).toBe('ap-guangzhou');

    const rawReply = await callProxy(gw, token, 'tencent-tc3', '/', {
      method: 'POST',
      headers: action,
      body: '{"Limit": 2}',
    });
    expect(failures).toEqual([]);
    expect(rawReply.json).toMatchObject({ Response: { Action: 'DescribeInstances' } });
    expect(upstream.received.at(-1)!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(upstream.received.at(-1)!.body.toString('utf8')).toBe('{"Limit": 2}');
  });

  it('the upstream really checks: a wrong SecretKey is refused', async () => {
    const reply = await callProxy(gw, await provider('wrongSecretKey'), 'tencent-tc3', '/', {
      method: 'POST',
      headers: { 'X-TC-Action': 'DescribeInstances', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(reply.json).toMatchObject({ Response: { Error: { Code: 'AuthFailure.SignatureFailure' } } });
    expect(failures.pop()).toBe('AuthFailure.SignatureFailure');
  });

  it('a GET fails in the script with a message saying to use POST, and nothing is sent', async () => {
    const before = upstream.received.length;
    const reply = await callProxy(gw, await provider(secretKey), 'tencent-tc3', '/?Action=DescribeInstances');
    expect(reply.status).toBe(502);
    expect(problemOf(reply)).toMatchObject({ code: 'KG_SCRIPT_ERROR' });
    expect(problemOf(reply).detail).toContain('tencent-tc3: call the API with POST');
    expect(upstream.received.length).toBe(before);
  });
});
