/**
 * scripts-examples/oauth2-client-credentials (mode token) against an authorization server and an
 * API on port 0 that follow RFC 6749: client authentication by HTTP Basic with form-encoded id
 * and secret (2.3.1), grant_type=client_credentials (4.4), access_token + expires_in back, and
 * the API's 401 once a token is revoked. Proves one token fetch for many calls, a new fetch after
 * a 401, and after expiry; vectors.json is RFC 6749 4.4.2's own example.
 */
import { timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { json, type ReceivedRequest, startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { callProxy, exampleConfig, exampleVectors } from './helpers.ts';

interface OAuthVectors {
  clientId: string;
  clientSecret: string;
  tokenRequest: { authorization: string; contentType: string; body: string };
  tokenResponse: { access_token: string; expires_in: number };
  apiRequestAuthorization: string;
}

const vectors = exampleVectors<OAuthVectors>('oauth2-client-credentials');

/** RFC 6749 2.3.1: the client id and secret are form-encoded, then joined by ':' and base64'd. */
function readBasic(header: string): { id: string; secret: string } | null {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

interface AuthServer {
  upstream: TestUpstream;
  clients: Map<string, string>;
  issued: Set<string>;
  fetches: number;
  tokenRequests: ReceivedRequest[];
  expiresIn: number;
  nextToken: (() => string) | null;
  rejected: string[];
}

async function startAuthServer(): Promise<AuthServer> {
  const server = {
    clients: new Map<string, string>(),
    issued: new Set<string>(),
    fetches: 0,
    tokenRequests: [] as ReceivedRequest[],
    expiresIn: 3600,
    nextToken: null as (() => string) | null,
    rejected: [] as string[],
  };
  let counter = 0;
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/oauth2/token') {
      server.tokenRequests.push(req);
      const client = readBasic(String(req.headers.authorization ?? ''));
      const form = new URLSearchParams(req.body.toString('utf8'));
      const known = client ? server.clients.get(client.id) : undefined;
      const secretOk =
        known !== undefined &&
        client &&
        known.length === client.secret.length &&
        timingSafeEqual(Buffer.from(known), Buffer.from(client.secret));
      if (
        !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded') ||
        form.get('grant_type') !== 'client_credentials'
      ) {
        server.rejected.push('unsupported_grant_type');
        return json(res, 400, { error: 'unsupported_grant_type' });
      }
      if (!secretOk) {
        server.rejected.push('invalid_client');
        return json(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="token"' });
      }
      server.fetches++;
      const token = server.nextToken?.() ?? `at-${++counter}-${Date.now()}`;
      server.issued.add(token);
      return json(
        res,
        200,
        { access_token: token, token_type: 'Bearer', expires_in: server.expiresIn },
        { 'cache-control': 'no-store' },
      );
    }
    const bearer = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!bearer || !server.issued.has(bearer)) {
      return json(
        res,
        401,
        { error: 'invalid_token' },
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      );
    }
    json(res, 200, { ok: true, path: req.url });
  });
  return Object.assign(server, { upstream });
}

describe('oauth2-client-credentials through the proxy', () => {
  let gw: TestGateway;
  let auth: AuthServer;

  async function provider(clientId: string, clientSecret: string): Promise<string> {
    const config = exampleConfig('oauth2-client-credentials', {
      prefixUrl: `${auth.upstream.url}/api`,
      tokenUrl: `${auth.upstream.url}/oauth2/token`,
    });
    return (await setUpProvider(gw, config, { AppKey: clientId, AppSecret: clientSecret })).serviceToken;
  }

  beforeAll(async () => {
    auth = await startAuthServer();
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.close();
    await auth?.upstream.close();
  });

  it("sends RFC 6749 4.4.2's token request byte for byte and the token it gets as Bearer", async () => {
    auth.clients.set(vectors.clientId, vectors.clientSecret);
    auth.nextToken = () => vectors.tokenResponse.access_token;
    const token = await provider(vectors.clientId, vectors.clientSecret);
    const reply = await callProxy(gw, token, 'oauth2-client-credentials', '/things');
    auth.nextToken = null;
    expect(reply.status, reply.text).toBe(200);
    const tokenRequest = auth.tokenRequests.at(-1)!;
    expect(tokenRequest.headers.authorization).toBe(vectors.tokenRequest.authorization);
    expect(tokenRequest.headers['content-type']).toBe(vectors.tokenRequest.contentType);
    expect(tokenRequest.body.toString('utf8')).toBe(vectors.tokenRequest.body);
    expect(auth.upstream.received.at(-1)!.headers.authorization).toBe(vectors.apiRequestAuthorization);
  });

  it('fetches one token for 30 concurrent calls, and a new one after the API answers 401', async () => {
    const clientSecret = 'p@ss:word+with/odd=chars é';
    auth.clients.set('svc-orders', clientSecret);
    const token = await provider('svc-orders', clientSecret);
    const before = auth.fetches;
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => callProxy(gw, token, 'oauth2-client-credentials', `/orders/${i}`)),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(auth.fetches - before).toBe(1);
    expect(auth.rejected).toEqual([]);

    // The server revokes every token: the next call's 401 reaches the caller and drops the cached token.
    auth.issued.clear();
    const revoked = await callProxy(gw, token, 'oauth2-client-credentials', '/orders/x');
    expect(revoked.status).toBe(401);
    expect(auth.fetches - before).toBe(1);
    const again = await callProxy(gw, token, 'oauth2-client-credentials', '/orders/y');
    expect(again.status).toBe(200);
    expect(auth.fetches - before).toBe(2);
    const more = await Promise.all(
      [1, 2, 3].map((i) => callProxy(gw, token, 'oauth2-client-credentials', `/orders/z${i}`)),
    );
    expect(more.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(auth.fetches - before).toBe(2);
  });

  it('fetches again once the token has expired', async () => {
    auth.clients.set('svc-short', 'short-lived');
    auth.expiresIn = 2; // handed out for 1.8 s (a tenth of the lifetime is kept as margin)
    const token = await provider('svc-short', 'short-lived');
    const before = auth.fetches;
    expect((await callProxy(gw, token, 'oauth2-client-credentials', '/a')).status).toBe(200);
    expect((await callProxy(gw, token, 'oauth2-client-credentials', '/b')).status).toBe(200);
    expect(auth.fetches - before).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await callProxy(gw, token, 'oauth2-client-credentials', '/c')).status).toBe(200);
    expect(auth.fetches - before).toBe(2);
    auth.expiresIn = 3600;
  });

  it('a wrong client secret fails with KG_TOKEN_FETCH_FAILED naming the OAuth error, not the secret', async () => {
    auth.clients.set('svc-wrong', 'the-real-secret');
    const reply = await callProxy(
      gw,
      await provider('svc-wrong', 'not-the-secret'),
      'oauth2-client-credentials',
      '/a',
    );
    expect(reply.status).toBe(502);
    expect(reply.json).toMatchObject({ code: 'KG_TOKEN_FETCH_FAILED' });
    expect(String((reply.json as { detail: string }).detail)).toContain('invalid_client');
    expect(reply.text).not.toContain('not-the-secret');
    expect(auth.rejected.pop()).toBe('invalid_client');
  });
});
