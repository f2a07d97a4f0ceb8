/**
 * A local stand-in for a third-party API that speaks the seed scheme: `keygate dev` runs it as
 * the demo provider, and the tests use it as a strict simulator. It checks the token request's
 * signature and AES payload, the API request's bearer token, signature and AES payload, and
 * answers with AES-encrypted data (code 401 in the body once a token has expired).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSignStr } from '../outbound/sign-string.ts';

export interface SeedProviderOptions {
  appKey: string;
  aesKey: string;
  aesIv: string;
  tokenTtlSeconds?: number;
  /** How `expireTime` is written in the token answer (all three forms must work). */
  expireTimeFormat?: 'seconds' | 'milliseconds' | 'iso';
  /** Delay before answering token requests, to widen single-flight races in tests. */
  tokenDelayMs?: number;
}

export interface SeedProvider {
  url: string;
  port: number;
  stats: { tokenRequests: number; apiRequests: number; rejected: string[] };
  /** Makes every issued token invalid: the next API call answers `{"code":401}`. */
  expireAllTokens(): void;
  close(): Promise<void>;
}

export function aesCbcEncrypt(key: string, iv: string, text: string): string {
  const cipher = createCipheriv(aesAlgorithm(key), Buffer.from(key), Buffer.from(iv));
  return Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]).toString('base64');
}

export function aesCbcDecrypt(key: string, iv: string, base64: string): string {
  const decipher = createDecipheriv(aesAlgorithm(key), Buffer.from(key), Buffer.from(iv));
  return Buffer.concat([decipher.update(Buffer.from(base64, 'base64')), decipher.final()]).toString('utf8');
}

function aesAlgorithm(key: string): string {
  return `aes-${Buffer.byteLength(key) * 8}-cbc`;
}

const sha256Upper = (s: string) => createHash('sha256').update(s).digest('hex').toUpperCase();

export async function startSeedProvider(
  opts: SeedProviderOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<SeedProvider> {
  const {
    appKey,
    aesKey,
    aesIv,
    tokenTtlSeconds = 7200,
    expireTimeFormat = 'seconds',
    tokenDelayMs = 0,
  } = opts;
  const tokens = new Set<string>();
  const stats = { tokenRequests: 0, apiRequests: 0, rejected: [] as string[] };

  const reject = (reason: string) => {
    stats.rejected.push(reason);
    return { code: 400, msg: reason };
  };

  async function handleToken(body: Record<string, unknown>) {
    stats.tokenRequests++;
    if (tokenDelayMs) await new Promise((r) => setTimeout(r, tokenDelayMs));
    if (body.appKey !== appKey) return reject('token: unknown appKey');
    const expected = sha256Upper(`appKey=${body.appKey}&data=${body.data}&timestamp=${body.timestamp}`);
    if (body.sign !== expected) return reject('token: bad sign');
    let inner: { appKey?: string };
    try {
      inner = JSON.parse(aesCbcDecrypt(aesKey, aesIv, String(body.data)));
    } catch {
      return reject('token: data does not decrypt');
    }
    if (inner.appKey !== appKey) return reject('token: data has the wrong appKey');
    const accessToken = randomBytes(16).toString('hex');
    tokens.add(accessToken);
    const expiresMs = Date.now() + tokenTtlSeconds * 1000;
    const expireTime =
      expireTimeFormat === 'seconds'
        ? Math.floor(expiresMs / 1000)
        : expireTimeFormat === 'milliseconds'
          ? expiresMs
          : new Date(expiresMs).toISOString();
    return { code: 0, data: { accessToken, expireTime } };
  }

  function handleApi(
    method: string,
    path: string,
    authorization: string | undefined,
    body: Record<string, unknown>,
  ) {
    stats.apiRequests++;
    const token = /^Bearer (\w+)$/.exec(authorization ?? '')?.[1];
    if (!token || !tokens.has(token)) return { code: 401, msg: 'token invalid or expired' };
    if (body.appKey !== appKey) return reject('api: unknown appKey');
    const { sign, ...unsigned } = body;
    if (sign !== sha256Upper(buildSignStr(Object.entries(unsigned)))) return reject('api: bad sign');
    let plain: string;
    try {
      plain = aesCbcDecrypt(aesKey, aesIv, String(body.data));
    } catch {
      return reject('api: data does not decrypt');
    }
    const answer = JSON.stringify({ echo: plain, method, path });
    return { code: 0, data: aesCbcEncrypt(aesKey, aesIv, answer) };
  }

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      body = text ? JSON.parse(text) : {};
    } catch {
      body = {};
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const answer =
      path === '/oauth/token' && req.method === 'POST'
        ? await handleToken(body)
        : handleApi(req.method ?? 'GET', path, req.headers.authorization, body);
    const text = JSON.stringify(answer);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actualPort}`,
    port: actualPort,
    stats,
    expireAllTokens: () => tokens.clear(),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
