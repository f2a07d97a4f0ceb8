/**
 * scripts-examples/alipay-rsa2 proven by
 * - an OpenSSL known answer (vectors.json: `openssl dgst -sha256 -sign` over the string to sign
 *   built by hand from Alipay's rules, https://opendocs.alipay.com/common/02kf5q), replayed with
 *   `keygate script test`;
 * - an Alipay gateway simulator on port 0 that verifies every request with node:crypto.verify and
 *   the app's public key, and signs its answers with its own key over the response member's raw
 *   JSON text (with \u escapes and spaces that a re-serialization would change).
 * Keys in a wrong format fail naming the built-in, never showing the key.
 */
import { sign, verify } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import {
  callProxy,
  dryRun,
  exampleConfig,
  exampleVectors,
  problemOf,
  type RsaPair,
  rsaPair,
} from './helpers.ts';

interface AlipayVectors {
  appPrivateKeyPkcs1: string;
  appPublicKey: string;
  params: Array<[string, string]>;
  appId: string;
  stringToSign: string;
  sign: string;
}

const vectors = exampleVectors<AlipayVectors>('alipay-rsa2');
const FORM = 'application/x-www-form-urlencoded';

describe('alipay-rsa2: an OpenSSL known answer, replayed with `keygate script test`', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
  });

  const bareBase64 = vectors.appPrivateKeyPkcs1
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  it.each([
    ['a PKCS#1 PEM', vectors.appPrivateKeyPkcs1],
    ["the key tool's bare base64", bareBase64],
  ])('with the private key as %s', async (_form, key) => {
    const { tenant } = await setUpProvider(gw, exampleConfig('alipay-rsa2'), {
      AppKey: vectors.appId,
      AppPrivateKey: key,
    });
    const result = await dryRun(gw, tenant, 'alipay-rsa2', {
      method: 'POST',
      path: '/gateway.do',
      headers: { 'content-type': FORM },
      body: new URLSearchParams(vectors.params).toString(),
    });
    const sent = new URLSearchParams(result.request.body ?? '');
    expect(sent.get('sign')).toBe(vectors.sign);
    const unsigned = [...sent].filter(([k]) => k !== 'sign').sort(([a], [b]) => (a < b ? -1 : 1));
    expect(unsigned.map(([k, v]) => `${k}=${v}`).join('&')).toBe(vectors.stringToSign);
  });
});

// ---------------------------------------------------------------------------------------------
// An Alipay gateway simulator

type AnswerMode = 'signed' | 'sign-first' | 'forged' | 'unsigned-error' | 'unsigned-success';

interface Simulator {
  upstream: TestUpstream;
  app: RsaPair;
  alipay: RsaPair;
  mode: AnswerMode;
  rejected: string[];
}

const APP_ID = '2021000117650000';

/** Alipay's rule, written from its docs: sorted, without sign and empty values, name=value&... */
function contentToSign(params: URLSearchParams): string {
  return [...params]
    .filter(([k, v]) => k !== 'sign' && v !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function checkRequest(req: ReceivedRequest, app: RsaPair): { params: URLSearchParams } | { problem: string } {
  const isForm = String(req.headers['content-type'] ?? '').startsWith(FORM);
  const params = new URLSearchParams(isForm ? req.body.toString('utf8') : (req.url.split('?')[1] ?? ''));
  if (params.get('app_id') !== APP_ID) return { problem: 'isv.invalid-app-id' };
  if (params.get('sign_type') !== 'RSA2') return { problem: 'isv.invalid-signature-type' };
  if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(params.get('timestamp') ?? ''))
    return { problem: 'isv.invalid-timestamp' };
  const ok = verify(
    'sha256',
    Buffer.from(contentToSign(params)),
    app.publicKey,
    Buffer.from(params.get('sign') ?? '', 'base64'),
  );
  return ok ? { params } : { problem: 'isv.invalid-signature' };
}

async function startSimulator(): Promise<Simulator> {
  const sim = { app: rsaPair(), alipay: rsaPair(), mode: 'signed' as AnswerMode, rejected: [] as string[] };

  function answer(res: ServerResponse, member: string, content: string): void {
    let signature = sign('sha256', Buffer.from(content), sim.alipay.privateKey).toString('base64');
    if (sim.mode === 'forged')
      signature = sign(
        'sha256',
        Buffer.from(content.replace('88.88', '99.99')),
        sim.alipay.privateKey,
      ).toString('base64');
    const text =
      sim.mode === 'sign-first'
        ? `{ "sign" : "${signature}" , "${member}" : ${content} }`
        : `{"${member}":${content},"sign":"${signature}"}`;
    // Alipay's gateway labels its JSON text/html, so the script gets respBody null and reads respRaw().
    res.writeHead(200, { 'content-type': 'text/html;charset=utf-8' });
    res.end(text);
  }

  const upstream = await startUpstream((req, res) => {
    const checked = checkRequest(req, sim.app);
    if ('problem' in checked) {
      sim.rejected.push(checked.problem);
      res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
      res.end(
        JSON.stringify({
          error_response: { code: '40002', msg: 'Invalid Arguments', sub_code: checked.problem },
        }),
      );
      return;
    }
    const member = `${String(checked.params.get('method')).replace(/\./g, '_')}_response`;
    if (sim.mode === 'unsigned-error' || sim.mode === 'unsigned-success') {
      const code = sim.mode === 'unsigned-error' ? '40004' : '10000';
      res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
      res.end(`{"${member}":{"code":"${code}","msg":"Business Failed"}}`);
      return;
    }
    // \u escapes, an escaped slash and spaces: only the raw text verifies.
    const content =
      '{"code":"10000","msg":"Success","buyer_logon_id":"\\u5f20*\\u4e09","trade_no":"2013112011001004330000121536",' +
      '"out_trade_no":"6823789339978248", "total_amount":"88.88","send_pay_date":"2014-11-27 15:45:57","url":"https:\\/\\/x"}';
    answer(res, member, content);
  });
  return Object.assign(sim, { upstream });
}

describe('alipay-rsa2 through the proxy, against an Alipay gateway simulator', () => {
  let gw: TestGateway;
  let sim: Simulator;
  let serviceToken: string;
  const bizContent = JSON.stringify({ out_trade_no: '6823789339978248', note: '中文 & = + %' });

  async function provider(appPrivateKey: string): Promise<string> {
    const config = exampleConfig('alipay-rsa2', { prefixUrl: sim.upstream.url });
    const secrets = { AppKey: APP_ID, AppPrivateKey: appPrivateKey, AlipayPublicKey: sim.alipay.spkiBase64 };
    return (await setUpProvider(gw, config, secrets)).serviceToken;
  }

  function query(token: string, via: 'form' | 'query' = 'form') {
    const params = new URLSearchParams({ method: 'alipay.trade.query', biz_content: bizContent }).toString();
    return via === 'form'
      ? callProxy(gw, token, 'alipay-rsa2', '/gateway.do', {
          method: 'POST',
          headers: { 'content-type': FORM },
          body: params,
        })
      : callProxy(gw, token, 'alipay-rsa2', `/gateway.do?${params}`);
  }

  beforeAll(async () => {
    sim = await startSimulator();
    gw = await startTestGateway();
    serviceToken = await provider(sim.app.pkcs1Pem);
  });
  afterAll(async () => {
    await gw?.close();
    await sim?.upstream.close();
  });

  it('signs a form POST and a GET; verified answers reach the caller exactly as Alipay sent them', async () => {
    sim.mode = 'signed';
    for (const via of ['form', 'query'] as const) {
      const reply = await query(serviceToken, via);
      expect(sim.rejected).toEqual([]);
      expect(reply.status).toBe(200);
      expect(reply.text).toContain('"buyer_logon_id":"\\u5f20*\\u4e09"');
      expect(reply.json).toMatchObject({
        alipay_trade_query_response: { code: '10000', total_amount: '88.88' },
      });
    }
    const form = new URLSearchParams(sim.upstream.received.at(-2)!.body.toString('utf8'));
    expect(form.get('biz_content')).toBe(bizContent);
    expect(form.get('charset')).toBe('utf-8');
  });

  it('takes the private key as PKCS#8 PEM too, and finds the response member wherever it sits', async () => {
    sim.mode = 'sign-first';
    const reply = await query(await provider(sim.app.pkcs8Pem));
    sim.mode = 'signed';
    expect(sim.rejected).toEqual([]);
    expect(reply.status, reply.text).toBe(200);
  });

  it('refuses a forged answer and an unsigned success; lets an unsigned failure through', async () => {
    sim.mode = 'forged';
    const forged = await query(serviceToken);
    expect(forged.status).toBe(502);
    expect(problemOf(forged)).toMatchObject({ code: 'KG_SCRIPT_ERROR' });
    expect(problemOf(forged).detail).toContain("alipay-rsa2: the answer's sign does not verify");

    sim.mode = 'unsigned-success';
    const unsignedSuccess = await query(serviceToken);
    expect(unsignedSuccess.status).toBe(502);
    expect(problemOf(unsignedSuccess).detail).toContain('the answer is not signed');

    sim.mode = 'unsigned-error';
    const unsignedError = await query(serviceToken);
    expect(unsignedError.status).toBe(200);
    expect(unsignedError.json).toMatchObject({ alipay_trade_query_response: { code: '40004' } });
    sim.mode = 'signed';
  });

  it('the simulator really checks: another app key is refused', async () => {
    const reply = await query(await provider(rsaPair().pkcs1Pem));
    expect(reply.json).toMatchObject({ error_response: { sub_code: 'isv.invalid-signature' } });
    expect(sim.rejected.pop()).toBe('isv.invalid-signature');
  });

  it('a JSON body fails in the script with a message saying how to send the parameters', async () => {
    const reply = await callProxy(gw, serviceToken, 'alipay-rsa2', '/gateway.do', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'alipay.trade.query' }),
    });
    expect(reply.status).toBe(502);
    expect(problemOf(reply).detail).toContain(
      'send the parameters as an application/x-www-form-urlencoded body',
    );
  });

  it("reads the key tool's bare base64 in either form: OpenSSL takes a PKCS#8 body under the PKCS#1 armor", async () => {
    for (const bare of [sim.app.pkcs1Base64, sim.app.pkcs8Base64]) {
      const reply = await query(await provider(bare));
      expect(reply.status, reply.text).toBe(200);
    }
    expect(sim.rejected).toEqual([]);
  });

  describe('a wrong key format fails naming rsa_sha256_sign, never showing the key', () => {
    const wrap = (base64: string, label: string) =>
      `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;

    it.each([
      [
        'a PKCS#1 key in a PKCS#8 ("PRIVATE KEY") armor',
        () => wrap(sim.app.pkcs1Base64, 'PRIVATE KEY'),
        /the "PRIVATE KEY" data inside the PEM could not be parsed/,
      ],
      ['a truncated PEM', () => sim.app.pkcs1Pem.slice(0, 1000), /the PEM is truncated/],
      [
        'the public key instead of the private key',
        () => sim.app.spkiPem,
        /expected a private key, got a PEM "PUBLIC KEY" block/,
      ],
    ])('%s', async (_name, key, problem) => {
      const material = key();
      const before = sim.upstream.received.length;
      const reply = await query(await provider(material));
      expect(reply.status).toBe(502);
      expect(problemOf(reply).code).toBe('KG_SCRIPT_ERROR');
      expect(problemOf(reply).detail).toMatch(/rsa_sha256_sign: cannot read the private key: /);
      expect(problemOf(reply).detail).toMatch(problem);
      for (const line of material.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) {
        expect(reply.text).not.toContain(line);
      }
      expect(sim.upstream.received.length).toBe(before);
    });
  });
});
