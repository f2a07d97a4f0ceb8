/**
 * scripts-examples/wechatpay-v3 proven by
 * - WeChat Pay's own worked examples (vectors.json: the documentation's test key and the exact
 *   signatures it gives: https://pay.weixin.qq.com/doc/v3/merchant/4012365336 and .../4012365334),
 *   replayed with `keygate script test`;
 * - a WeChat Pay simulator on port 0 that checks every request's WECHATPAY2-SHA256-RSA2048
 *   Authorization with node:crypto.verify, signs its answers with its own platform key, and
 *   encrypts certificates with node:crypto AES-256-GCM, as WeChat Pay does.
 * Bad keys (a truncated PEM, a 31-byte APIv3 key) and a forged GCM tag fail with a script error
 * that names the built-in and never shows the key.
 */
import { createCipheriv, randomBytes, sign, verify } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import {
  callProxy,
  dryRun,
  exampleConfig,
  exampleVectors,
  headerOf,
  pemBodyLines,
  problemOf,
  type RsaPair,
  rsaPair,
} from './helpers.ts';

interface WechatVectors {
  mchId: string;
  mchSerialNo: string;
  testPrivateKey: string;
  requests: Array<{
    name: string;
    source: string;
    method: string;
    path: string;
    timestamp: string;
    nonce: string;
    body?: unknown;
    signature: string;
  }>;
}

const vectors = exampleVectors<WechatVectors>('wechatpay-v3');

describe("wechatpay-v3: WeChat Pay's documented signatures, replayed with `keygate script test`", () => {
  let gw: TestGateway;
  let tenant: string;

  beforeAll(async () => {
    gw = await startTestGateway();
    ({ tenant } = await setUpProvider(
      gw,
      exampleConfig('wechatpay-v3'),
      { MchId: vectors.mchId, MchSerialNo: vectors.mchSerialNo, MchPrivateKey: vectors.testPrivateKey },
      { notSensitive: ['MchId', 'MchSerialNo'] },
    ));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(vectors.requests.map((v) => [v.name, v] as const))('%s', async (_name, vector) => {
    const result = await dryRun(gw, tenant, 'wechatpay-v3', {
      method: vector.method,
      path: vector.path,
      headers: { 'X-Sign-Timestamp': vector.timestamp, 'X-Sign-Nonce': vector.nonce },
      body: vector.body,
    });
    expect(headerOf(result.request.headers, 'authorization')).toBe(
      `WECHATPAY2-SHA256-RSA2048 mchid="${vectors.mchId}",nonce_str="${vector.nonce}",signature="${vector.signature}",` +
        `timestamp="${vector.timestamp}",serial_no="${vectors.mchSerialNo}"`,
    );
    expect(headerOf(result.request.headers, 'x-sign-timestamp')).toBeUndefined();
    expect(headerOf(result.request.headers, 'x-sign-nonce')).toBeUndefined();
    expect(result.request.url).toBe(`https://api.mch.weixin.qq.com${vector.path}`);
  });
});

// ---------------------------------------------------------------------------------------------
// A WeChat Pay simulator

const MCH_ID = '1900000109';
const MCH_SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
const PLATFORM_SERIAL = 'PUB_KEY_ID_0114232134912410000000000000';
const API_V3_KEY = 'kgApiV3KeyThirtyTwoCharacters!!0';
const CERTIFICATE =
  '-----BEGIN CERTIFICATE-----\nMIIDlTCCAn2gAwIBAgIUR2kYrdS0...(platform certificate)\n-----END CERTIFICATE-----\n';

type AnswerMode = 'signed' | 'forged-signature' | 'unsigned' | 'forged-tag';

interface Simulator {
  upstream: TestUpstream;
  merchant: RsaPair;
  platform: RsaPair;
  mode: AnswerMode;
  rejected: string[];
}

function parseAuthorization(header: string): Record<string, string> | null {
  const m = /^WECHATPAY2-SHA256-RSA2048 (.+)$/.exec(header);
  if (!m) return null;
  const fields: Record<string, string> = {};
  for (const part of m[1]!.split(',')) {
    const kv = /^(\w+)="([^"]*)"$/.exec(part);
    if (!kv) return null;
    fields[kv[1]!] = kv[2]!;
  }
  return fields;
}

/** Checks a request the way WeChat Pay's gateway does; returns why it is refused, or null. */
function checkRequest(req: ReceivedRequest, merchant: RsaPair): string | null {
  const auth = parseAuthorization(String(req.headers.authorization ?? ''));
  if (!auth) return 'Authorization is not WECHATPAY2-SHA256-RSA2048';
  if (auth.mchid !== MCH_ID || auth.serial_no !== MCH_SERIAL) return 'wrong mchid or serial_no';
  if (Math.abs(Date.now() / 1000 - Number(auth.timestamp)) > 300) return 'timestamp out of window';
  const message = `${req.method}\n${req.url}\n${auth.timestamp}\n${auth.nonce_str}\n${req.body.toString('utf8')}\n`;
  const ok = verify(
    'sha256',
    Buffer.from(message),
    merchant.publicKey,
    Buffer.from(auth.signature ?? '', 'base64'),
  );
  return ok ? null : 'signature does not verify';
}

function encryptResource(plaintext: string, associatedData: string): Record<string, string> {
  const nonce = randomBytes(6).toString('hex'); // 12 characters, used as 12 bytes
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(API_V3_KEY), Buffer.from(nonce));
  cipher.setAAD(Buffer.from(associatedData));
  const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return {
    algorithm: 'AEAD_AES_256_GCM',
    associated_data: associatedData,
    nonce,
    ciphertext: sealed.toString('base64'),
  };
}

async function startSimulator(): Promise<Simulator> {
  const sim = {
    merchant: rsaPair(),
    platform: rsaPair(),
    mode: 'signed' as AnswerMode,
    rejected: [] as string[],
  };

  function answer(res: ServerResponse, status: number, text: string): void {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'request-id': 'req-1' };
    if (sim.mode !== 'unsigned') {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = randomBytes(16).toString('hex').toUpperCase();
      const signed = sim.mode === 'forged-signature' ? text.replace('1', '2') : text;
      headers['wechatpay-timestamp'] = timestamp;
      headers['wechatpay-nonce'] = nonce;
      headers['wechatpay-serial'] = PLATFORM_SERIAL;
      headers['wechatpay-signature'] = sign(
        'sha256',
        Buffer.from(`${timestamp}\n${nonce}\n${signed}\n`),
        sim.platform.privateKey,
      ).toString('base64');
    }
    res.writeHead(status, headers);
    res.end(text);
  }

  const upstream = await startUpstream((req, res) => {
    const problem = checkRequest(req, sim.merchant);
    if (problem) {
      sim.rejected.push(problem);
      // WeChat Pay does not sign answers to requests it cannot authenticate.
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'SIGN_ERROR', message: problem }));
      return;
    }
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && path === '/v3/pay/transactions/native') {
      // Spaces on purpose: the signature covers these bytes, not a re-serialization.
      answer(res, 200, '{"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz", "amount": 100}');
    } else if (req.method === 'GET' && path?.startsWith('/v3/pay/transactions/out-trade-no/')) {
      answer(
        res,
        200,
        JSON.stringify({ out_trade_no: path.split('/').pop(), trade_state: 'SUCCESS', query: req.url }),
      );
    } else if (req.method === 'GET' && path === '/v3/certificates') {
      const resource = encryptResource(CERTIFICATE, 'certificate');
      if (sim.mode === 'forged-tag') {
        const bytes = Buffer.from(resource.ciphertext!, 'base64');
        bytes[bytes.length - 1]! ^= 1;
        resource.ciphertext = bytes.toString('base64');
      }
      answer(
        res,
        200,
        JSON.stringify({
          data: [
            {
              serial_no: PLATFORM_SERIAL,
              effective_time: '2024-01-01T00:00:00+08:00',
              expire_time: '2029-01-01T00:00:00+08:00',
              encrypt_certificate: resource,
            },
          ],
        }),
      );
    } else {
      answer(res, 404, JSON.stringify({ code: 'NOT_FOUND', message: 'no such API' }));
    }
  });
  return Object.assign(sim, { upstream });
}

describe('wechatpay-v3 through the proxy, against a WeChat Pay simulator', () => {
  let gw: TestGateway;
  let sim: Simulator;
  let serviceToken: string;

  function secrets(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      MchId: MCH_ID,
      MchSerialNo: MCH_SERIAL,
      MchPrivateKey: sim.merchant.pkcs8Pem, // apiclient_key.pem is PKCS#8
      WechatpayPublicKey: sim.platform.spkiPem,
      ApiV3Key: API_V3_KEY,
      ...overrides,
    };
  }

  async function provider(overrides: Record<string, string> = {}): Promise<string> {
    const config = exampleConfig('wechatpay-v3', { prefixUrl: sim.upstream.url });
    return (await setUpProvider(gw, config, secrets(overrides), { notSensitive: ['MchId', 'MchSerialNo'] }))
      .serviceToken;
  }

  beforeAll(async () => {
    sim = await startSimulator();
    gw = await startTestGateway();
    serviceToken = await provider();
  });
  afterAll(async () => {
    await gw?.close();
    await sim?.upstream.close();
  });

  it('signs a POST with a JSON body; the signed answer reaches the caller byte for byte', async () => {
    sim.mode = 'signed';
    const reply = await callProxy(gw, serviceToken, 'wechatpay-v3', '/v3/pay/transactions/native', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        appid: 'wxd678efh567hg6787',
        mchid: MCH_ID,
        description: 'Image形象店-深圳腾大',
        amount: { total: 100 },
      }),
    });
    expect(sim.rejected).toEqual([]);
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('{"code_url": "weixin://wxpay/bizpayurl?pr=p4lpSuKzz", "amount": 100}');
    expect(sim.upstream.received.at(-1)!.headers.accept).toBe('application/json');
  });

  it('signs the URL with its query exactly as sent', async () => {
    const reply = await callProxy(
      gw,
      serviceToken,
      'wechatpay-v3',
      `/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=${MCH_ID}&note=a%20b,c%2Bd`,
    );
    expect(sim.rejected).toEqual([]);
    expect(reply.status).toBe(200);
    expect((reply.json as { query: string }).query).toBe(
      `/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=${MCH_ID}&note=a%20b%2Cc%2Bd`,
    );
  });

  it('decrypts the AEAD_AES_256_GCM certificate resource for the caller', async () => {
    const reply = await callProxy(gw, serviceToken, 'wechatpay-v3', '/v3/certificates');
    expect(reply.status).toBe(200);
    const cert = (reply.json as { data: Array<{ encrypt_certificate: Record<string, string> }> }).data[0]!
      .encrypt_certificate;
    expect(cert.plaintext).toBe(CERTIFICATE);
    expect(cert.ciphertext).toBeUndefined();
    expect(cert).toMatchObject({ algorithm: 'AEAD_AES_256_GCM', associated_data: 'certificate' });
  });

  it('refuses an answer whose Wechatpay-Signature does not verify, and a success without one', async () => {
    sim.mode = 'forged-signature';
    const forged = await callProxy(gw, serviceToken, 'wechatpay-v3', '/v3/pay/transactions/native', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(forged.status).toBe(502);
    expect(problemOf(forged).code).toBe('KG_SCRIPT_ERROR');
    expect(problemOf(forged).detail).toContain('Wechatpay-Signature does not verify');

    sim.mode = 'unsigned';
    const unsigned = await callProxy(gw, serviceToken, 'wechatpay-v3', '/v3/certificates');
    expect(unsigned.status).toBe(502);
    expect(problemOf(unsigned).detail).toContain('the answer is not signed');
    sim.mode = 'signed';
  });

  it("passes WeChat Pay's own unsigned 401 through when the merchant key is wrong", async () => {
    const token = await provider({ MchPrivateKey: rsaPair().pkcs8Pem });
    const reply = await callProxy(gw, token, 'wechatpay-v3', '/v3/certificates');
    expect(reply.status).toBe(401);
    expect(reply.json).toMatchObject({ code: 'SIGN_ERROR' });
    expect(sim.rejected.pop()).toBe('signature does not verify');
  });

  describe('bad input fails in the script, naming the built-in and never the key', () => {
    it('a truncated private key PEM', async () => {
      const truncated = sim.merchant.pkcs8Pem.slice(0, 900);
      const token = await provider({ MchPrivateKey: truncated });
      const before = sim.upstream.received.length;
      const reply = await callProxy(gw, token, 'wechatpay-v3', '/v3/certificates');
      expect(reply.status).toBe(502);
      expect(problemOf(reply).code).toBe('KG_SCRIPT_ERROR');
      expect(problemOf(reply).detail).toMatch(/rsa_sha256_sign: cannot read the private key: .*truncated/);
      for (const line of pemBodyLines(truncated)) expect(reply.text).not.toContain(line);
      expect(sim.upstream.received.length).toBe(before);
    });

    it('an APIv3 key of the wrong length', async () => {
      const shortKey = API_V3_KEY.slice(0, 31);
      const token = await provider({ ApiV3Key: shortKey });
      const reply = await callProxy(gw, token, 'wechatpay-v3', '/v3/certificates');
      expect(reply.status).toBe(502);
      expect(problemOf(reply).code).toBe('KG_SCRIPT_ERROR');
      expect(problemOf(reply).detail).toContain('aes_gcm_decrypt: key must be 16, 24 or 32 bytes, got 31');
      expect(reply.text).not.toContain(shortKey);
      expect(reply.text).not.toContain(Buffer.from(shortKey).toString('base64'));
      expect(reply.text).not.toContain(CERTIFICATE.slice(30, 60));
    });

    it('a resource whose GCM tag was altered', async () => {
      sim.mode = 'forged-tag';
      const reply = await callProxy(gw, serviceToken, 'wechatpay-v3', '/v3/certificates');
      sim.mode = 'signed';
      expect(reply.status).toBe(502);
      expect(problemOf(reply).code).toBe('KG_SCRIPT_ERROR');
      expect(problemOf(reply).detail).toContain('aes_gcm_decrypt: authentication tag does not match');
      expect(reply.text).not.toContain(API_V3_KEY);
      expect(reply.text).not.toContain(Buffer.from(API_V3_KEY).toString('base64'));
      expect(reply.text).not.toContain(Buffer.from(API_V3_KEY).toString('hex'));
    });
  });
});
