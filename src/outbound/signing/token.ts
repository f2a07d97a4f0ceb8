/**
 * `token` mode: an OAuth2 client-credentials token (RFC 6749 4.4) from tokenUrl, cached per
 * tenant + provider until shortly before it expires and fetched by one caller at a time across
 * all nodes; sent as a Bearer token, then signed as `simple` unless the config turns that off.
 */
import { KeygateError } from '../../errors.ts';
import type { HttpClient } from '../../http-client.ts';
import { type ProviderSecrets, requireSecret } from '../../secrets/secret-store.ts';
import type { ProviderConfig } from '../../services/provider-config.ts';
import type { TokenCache } from '../token-cache/index.ts';
import { signSimple } from './simple.ts';
import type { OutgoingRequest } from './types.ts';

export interface TokenModeDeps {
  http: HttpClient;
  tokens: TokenCache;
  onTokenFetch?: (outcome: 'ok' | 'error') => void;
}

export async function signWithToken(
  req: OutgoingRequest,
  ctx: { tenantId: string; config: ProviderConfig; secrets: ProviderSecrets; nowMs: number },
  deps: TokenModeDeps,
): Promise<string> {
  const { config, secrets } = ctx;
  const cached = await deps.tokens.getOrFetch(ctx.tenantId, config.name, async () => {
    try {
      const fetched = await fetchClientCredentialsToken(config, secrets, deps.http);
      deps.onTokenFetch?.('ok');
      return fetched;
    } catch (err) {
      deps.onTokenFetch?.('error');
      throw err;
    }
  });
  req.headers.authorization = `Bearer ${cached.token}`;
  if (config.token?.sign !== false) signSimple(req, config.name, secrets, ctx.nowMs);
  return cached.token;
}

export async function fetchClientCredentialsToken(
  config: ProviderConfig,
  secrets: ProviderSecrets,
  http: HttpClient,
): Promise<{ token: string; expireTime: number | null }> {
  const settings = {
    clientAuth: 'basic',
    accessTokenField: 'access_token',
    expiresInField: 'expires_in',
    ...config.token,
  } as const;
  const clientId = requireSecret(secrets, config.name, 'AppKey');
  const clientSecret = requireSecret(secrets, config.name, 'AppSecret');
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (settings.scope) form.set('scope', settings.scope);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (settings.clientAuth === 'basic') {
    // RFC 6749 2.3.1: form-encode each part before joining with ':'.
    const basic = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  } else {
    form.set('client_id', clientId);
    form.set('client_secret', clientSecret);
  }
  const res = await http.send({
    method: 'POST',
    url: config.tokenUrl!,
    headers,
    body: Buffer.from(form.toString()),
    timeoutMs: config.timeoutMs,
  });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  if (res.status < 200 || res.status >= 300 || !json) {
    const oauthError = typeof json?.error === 'string' ? `: ${json.error}` : '';
    throw new KeygateError('KG_TOKEN_FETCH_FAILED', `token endpoint answered ${res.status}${oauthError}`);
  }
  const token = readPath(json, settings.accessTokenField);
  if (typeof token !== 'string' || token === '') {
    throw new KeygateError(
      'KG_TOKEN_FETCH_FAILED',
      `token endpoint answer has no ${settings.accessTokenField}`,
    );
  }
  const expiresIn = Number(readPath(json, settings.expiresInField));
  return {
    token,
    expireTime: Number.isFinite(expiresIn) && expiresIn > 0 ? Date.now() + expiresIn * 1000 : null,
  };
}

/** Reads `a.b.c` from a JSON object, for providers that nest the token. */
function readPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function formEncode(s: string): string {
  return new URLSearchParams({ s }).toString().slice(2);
}
