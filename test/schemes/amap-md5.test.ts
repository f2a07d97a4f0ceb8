/**
 * scripts-examples/amap-md5 proven by Amap's own example (vectors.json: parameters a=23, b=12,
 * d=48, f=8, c=67 with private key bbbbb sign as MD5("a=23&b=12&c=67&d=48&f=8bbbbb")), replayed
 * with `keygate script test` and hashed here with node:crypto (the example is on
 * https://lbs.amap.com/faq/quota-key/key/41181); and by an upstream on port 0 that checks every
 * request's sig the way Amap describes it.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { json, type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { callProxy, dryRun, exampleConfig, exampleVectors } from './helpers.ts';

interface AmapVectors {
  path: string;
  query: Array<[string, string]>;
  privateKey: string;
  stringToHash: string;
}

const vectors = exampleVectors<AmapVectors>('amap-md5');
const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

/** Amap's check: every parameter but sig, raw values, sorted by name, then the private key. */
function checkSig(params: Array<[string, string]>, privateKey: string): boolean {
  const sig = params.find(([k]) => k === 'sig')?.[1];
  const rest = params.filter(([k]) => k !== 'sig').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sig === md5(rest.map(([k, v]) => `${k}=${v}`).join('&') + privateKey);
}

function receivedParams(req: ReceivedRequest): Array<[string, string]> {
  const isForm = String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
  if (isForm) return [...new URLSearchParams(req.body.toString('utf8'))];
  const query = req.url.split('?')[1] ?? '';
  return query
    .split('&')
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf('=');
      return [decodeURIComponent(part.slice(0, eq)), decodeURIComponent(part.slice(eq + 1))] as [
        string,
        string,
      ];
    });
}

describe("amap-md5: Amap's documented example, replayed with `keygate script test`", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('signs a=23, b=12, d=48, f=8, c=67 with bbbbb as MD5("a=23&b=12&c=67&d=48&f=8bbbbb")', async () => {
    // No AppKey, so no `key` parameter joins the documented ones.
    const { tenant } = await setUpProvider(gw, exampleConfig('amap-md5'), { AppSecret: vectors.privateKey });
    const result = await dryRun(gw, tenant, 'amap-md5', {
      method: 'GET',
      path: vectors.path,
      query: Object.fromEntries(vectors.query),
    });
    const url = new URL(result.request.url);
    expect(url.pathname).toBe(vectors.path);
    expect(url.searchParams.get('sig')).toBe(md5(vectors.stringToHash));
    expect([...url.searchParams.keys()]).toEqual(['a', 'b', 'd', 'f', 'c', 'sig']);
  });
});

describe('amap-md5 through the proxy, checked upstream', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  const key = '0123456789abcdef0123456789abcdef';
  const privateKey = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      const params = receivedParams(req);
      if (params.find(([k]) => k === 'key')?.[1] !== key)
        return json(res, 200, { status: '0', infocode: '10001', info: 'INVALID_USER_KEY' });
      if (!checkSig(params, privateKey))
        return json(res, 200, { status: '0', infocode: '10007', info: 'INVALID_USER_SIGNATURE' });
      json(res, 200, { status: '1', infocode: '10000', info: 'OK', params: Object.fromEntries(params) });
    });
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const provider = async (secret: string) =>
    (
      await setUpProvider(gw, exampleConfig('amap-md5', { prefixUrl: upstream.url }), {
        AppKey: key,
        AppSecret: secret,
      })
    ).serviceToken;

  it('signs raw values (Chinese, +, comma, |) in a GET query and a form body', async () => {
    const token = await provider(privateKey);
    const get = await callProxy(
      gw,
      token,
      'amap-md5',
      `/v3/geocode/geo?address=${encodeURIComponent('北京市朝阳区阜通东大街6号')}&city=010&location=116.48,39.99|116.5,40&keywords=a%2Bb&sig=stale`,
    );
    expect(get.json).toMatchObject({
      status: '1',
      params: { address: '北京市朝阳区阜通东大街6号', keywords: 'a+b', key },
    });

    const post = await callProxy(gw, token, 'amap-md5', '/datamanage/data/create', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        tableid: '52b155b6e4b0bc61deeb7629',
        loctype: '1',
        data: '{"_name":"酒店","_location":"116.47,39.99"}',
      }).toString(),
    });
    expect(post.json).toMatchObject({ status: '1', params: { tableid: '52b155b6e4b0bc61deeb7629' } });
  });

  it('the upstream really checks: a wrong private key is refused', async () => {
    const reply = await callProxy(
      gw,
      await provider('wrong-private-key'),
      'amap-md5',
      '/v3/ip?ip=114.247.50.2',
    );
    expect(reply.json).toMatchObject({ status: '0', infocode: '10007' });
  });
});
