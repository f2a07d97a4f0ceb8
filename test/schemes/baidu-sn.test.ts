/**
 * scripts-examples/baidu-sn proven by Baidu's own example (vectors.json: ak=yourak, sk=yoursk,
 * /geocoder/v2/?address=百度大厦&output=json&ak=yourak signs to sn=7de5a22212ffaa9e326444c75a58f9a0,
 * from https://lbsyun.baidu.com/index.php?title=lbscloud/api/appendix), replayed with
 * `keygate script test`; and by an upstream on port 0 that recomputes sn from the query exactly
 * as received (so the request's parameter order matters), as Baidu's server does.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { json, type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { callProxy, dryRun, exampleConfig, exampleVectors } from './helpers.ts';

interface BaiduVectors {
  prefixUrl: string;
  ak: string;
  sk: string;
  path: string;
  query: Array<[string, string]>;
  sn: string;
  url: string;
}

const vectors = exampleVectors<BaiduVectors>('baidu-sn');

/** java.net.URLEncoder.encode(s, "UTF-8"), which Baidu's Java sample uses: form encoding, space as +. */
function javaUrlEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** sn over the query as it arrived, minus sn: the order on the wire is the order signed. */
function checkGet(req: ReceivedRequest, sk: string): boolean {
  const [path, query = ''] = req.url.split('?');
  const parts = query.split('&');
  const snPart = parts.find((p) => p.startsWith('sn='));
  const rest = parts.filter((p) => !p.startsWith('sn=')).join('&');
  return snPart === `sn=${md5(javaUrlEncode(`${path}?${rest}${sk}`))}`;
}

/** POST: the fields sorted by name, each value URL-encoded, as Baidu's docs say. */
function checkPost(req: ReceivedRequest, sk: string): boolean {
  const fields = [...new URLSearchParams(req.body.toString('utf8'))];
  const sn = fields.find(([k]) => k === 'sn')?.[1];
  const rest = fields.filter(([k]) => k !== 'sn').sort(([a], [b]) => (a < b ? -1 : 1));
  const query = rest.map(([k, v]) => `${k}=${javaUrlEncode(v)}`).join('&');
  return sn === md5(javaUrlEncode(`${req.url}?${query}${sk}`));
}

describe("baidu-sn: Baidu's documented example, replayed with `keygate script test`", () => {
  it('sends exactly the documented URL with sn=7de5a22212ffaa9e326444c75a58f9a0', async () => {
    const gw = await startTestGateway();
    try {
      const { tenant } = await setUpProvider(gw, exampleConfig('baidu-sn'), {
        AppKey: vectors.ak,
        AppSecret: vectors.sk,
      });
      const result = await dryRun(gw, tenant, 'baidu-sn', {
        method: 'GET',
        path: vectors.path,
        query: Object.fromEntries(vectors.query),
      });
      expect(result.request.url).toBe(vectors.url);
      expect(new URL(result.request.url).searchParams.get('sn')).toBe(vectors.sn);
    } finally {
      await gw.close();
    }
  });
});

describe('baidu-sn through the proxy, checked upstream', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  const ak = 'E4805d16520de693a3fe707cdc962045';
  const sk = 'keygateTestSecurityKey0123456789';

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      const ok = req.method === 'POST' ? checkPost(req, sk) : checkGet(req, sk);
      json(res, 200, ok ? { status: 0, url: req.url } : { status: 211, message: 'APP SN校验失败' });
    });
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const provider = async (secret: string) =>
    (
      await setUpProvider(gw, exampleConfig('baidu-sn', { prefixUrl: upstream.url }), {
        AppKey: ak,
        AppSecret: secret,
      })
    ).serviceToken;

  it('keeps the GET parameter order, and encodes spaces, +, *, ~ and Chinese as Baidu does', async () => {
    const token = await provider(sk);
    const reply = await callProxy(
      gw,
      token,
      'baidu-sn',
      `/place/v2/search?query=${encodeURIComponent('ATM 机+*~')}&tag=%E9%93%B6%E8%A1%8C&region=%E5%8C%97%E4%BA%AC&output=json`,
    );
    expect(reply.json).toMatchObject({ status: 0 });
    const sent = (reply.json as { url: string }).url;
    expect(sent).toMatch(
      /^\/place\/v2\/search\?query=ATM\+%E6%9C%BA%2B\*%7E&tag=%E9%93%B6%E8%A1%8C&region=%E5%8C%97%E4%BA%AC&output=json&ak=E4805d16520de693a3fe707cdc962045&sn=[0-9a-f]{32}$/,
    );
  });

  it('signs a POST form with its fields sorted by name', async () => {
    const reply = await callProxy(gw, await provider(sk), 'baidu-sn', '/geodata/v4/poi/create', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        title: '百度大厦 A座',
        latitude: '40.05',
        longitude: '116.30',
        geotable_id: '1000',
      }).toString(),
    });
    expect(reply.json).toMatchObject({ status: 0 });
  });

  it('the upstream really checks: a wrong sk is refused', async () => {
    const reply = await callProxy(
      gw,
      await provider('wrong-sk'),
      'baidu-sn',
      '/geocoding/v3/?address=x&output=json',
    );
    expect(reply.json).toMatchObject({ status: 211 });
  });
});
