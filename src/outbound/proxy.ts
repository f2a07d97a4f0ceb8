/**
 * The outbound proxy, top to bottom:
 *   authenticate service -> find provider -> load secrets -> read the caller's request ->
 *   sign (simple | token | script) -> egress check -> forward -> response hook -> mask -> answer.
 * `prepareSignedRequest` is shared with the script dry-run, so both sign exactly alike.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isKeygateError, KeygateError } from '../errors.ts';
import {
  type HttpClient,
  type UpstreamRequest,
  type UpstreamResponse,
  withoutHopByHop,
} from '../http-client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RequestScriptResult, ScriptHost } from '../sandbox/index.ts';
import { createMasker } from '../secrets/mask.ts';
import { assertSecretReadable, type ProviderSecrets, type SecretStore } from '../secrets/secret-store.ts';
import { PROVIDER_NAME } from '../services/provider-config.ts';
import { hasDotSegment } from '../url-path.ts';
import {
  type BodyValue,
  decodeContentEncoding,
  mayBeJsonAnswer,
  parseRequestBody,
  serializeBody,
} from './body.ts';
import type { LoadedProvider, ProviderRegistry } from './provider-registry.ts';
import { parseQuery, samePairs, serializeQuery } from './query.ts';
import type { ServiceAuthenticator } from './service-auth.ts';
import { applyTokenEffects, signWithScript } from './signing/script.ts';
import { signSimple } from './signing/simple.ts';
import { signWithToken } from './signing/token.ts';
import type { OutgoingRequest } from './signing/types.ts';
import type { TokenCache } from './token-cache/index.ts';

export interface OutboundDeps {
  authenticateService: ServiceAuthenticator;
  providers: ProviderRegistry;
  secrets: SecretStore;
  tokens: TokenCache;
  http: HttpClient;
  logger: Logger;
  metrics: Metrics;
}

/** The caller's request as the listener read it. */
export interface IncomingCall {
  requestId: string;
  method: string;
  /** Path and query after `/v1/proxy/<provider>`, e.g. `/orders/1?x=2`. */
  upstreamPathAndQuery: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface ProxyAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** Headers the caller may not pass through to a provider. */
const CALLER_ONLY_HEADERS = [
  'authorization',
  'cookie',
  'accept-encoding',
  'content-encoding',
  'x-request-id',
];
/** Headers of the upstream answer that keygate recomputes. */
const RECOMPUTED_RESPONSE_HEADERS = ['content-encoding', 'content-length'];
/** The secrets every script gets as arguments (DESIGN.md "Signing scripts"). */
const SCRIPT_ARGUMENT_SECRETS = ['AppKey', 'AesKey', 'AesIV'];

export async function proxyRequest(
  deps: OutboundDeps,
  providerName: string,
  call: IncomingCall,
): Promise<ProxyAnswer> {
  const { tenantId } = await deps.authenticateService(firstHeader(call.headers.authorization));
  const provider = await deps.providers.get(tenantId, providerName);
  const secrets = await deps.secrets.loadProviderSecrets(tenantId, provider.name);
  try {
    const prepared = await prepareSignedRequest(deps, provider, secrets, call, { applyTokenEffects: true });
    logScriptOutput(deps, call.requestId, provider, 'request', prepared.script?.effects.logs);
    const upstream = await deps.http.send(prepared.wire);
    return await answerFromUpstream(deps, provider, secrets, upstream, call.requestId, prepared.sentToken);
  } catch (err) {
    throw withMaskedDetail(err, secrets.mask);
  }
}

/**
 * The error with its detail masked: a detail may quote what a script built (a URL, a header), and
 * the error goes to the calling service and the log. Every such detail is masked where it is
 * made; this is the net under them.
 */
export function withMaskedDetail(err: unknown, mask: (text: string) => string): unknown {
  if (!isKeygateError(err)) return err;
  const detail = mask(err.message);
  return detail === err.message ? err : new KeygateError(err.code, detail, err.extra, { cause: err.cause });
}

export interface PreparedRequest {
  wire: UpstreamRequest;
  script: RequestScriptResult | undefined;
  /** The access token `token` mode sent, so a 401 drops exactly that one. */
  sentToken: string | undefined;
}

/** Steps shared by the proxy and the dry-run: parse, sign, build the wire request, check egress. */
export async function prepareSignedRequest(
  deps: Pick<OutboundDeps, 'tokens' | 'http' | 'metrics'>,
  provider: LoadedProvider,
  secrets: ProviderSecrets,
  call: IncomingCall,
  opts: { applyTokenEffects: boolean },
): Promise<PreparedRequest> {
  const { path, rawQuery } = splitPathAndQuery(call.upstreamPathAndQuery);
  // The URL parser would resolve `/..` (even `%2e%2e`) and leave the prefixUrl's path.
  if (hasDotSegment(path)) {
    throw new KeygateError('KG_BAD_REQUEST', 'the path must not contain "." or ".." segments');
  }
  const contentType = firstHeader(call.headers['content-type']);
  const bodyBytes = decodeContentEncoding(
    call.body,
    firstHeader(call.headers['content-encoding']),
    'request',
  );
  const { config } = provider;
  const originalQuery = parseQuery(rawQuery);
  // `token` mode without signing never reads or changes the body: it goes on byte for byte.
  const bodyIsSigned = !(config.mode === 'token' && config.token?.sign === false);
  const req: OutgoingRequest = {
    method: call.method.toUpperCase(),
    uri: path,
    headers: forwardableRequestHeaders(call.headers),
    query: originalQuery.map(([k, v]) => [k, v]),
    // A script gets a JSON body as its text, parsed in the isolate only; `simple` and `token`
    // change the body in place, so they get it parsed.
    body: bodyIsSigned
      ? parseRequestBody(bodyBytes, contentType, { jsonAsText: config.mode === 'script' })
      : { kind: 'none' },
  };
  if (secrets.unreadable !== undefined && (provider.request || provider.response)) {
    // A script gets these as arguments whether or not it reads them, and keygate cannot tell:
    // one that does not decrypt fails the call with its name, rather than run the script with
    // null in its place and sign with that.
    for (const name of SCRIPT_ARGUMENT_SECRETS) assertSecretReadable(secrets, provider.name, name);
  }
  const bodyBefore = req.body;
  let script: RequestScriptResult | undefined;
  let sentToken: string | undefined;
  const nowMs = Date.now();
  switch (config.mode) {
    case 'simple':
      signSimple(req, provider.name, secrets, nowMs);
      break;
    case 'token':
      sentToken = await signWithToken(
        req,
        { tenantId: provider.tenantId, config, secrets, nowMs },
        {
          http: deps.http,
          tokens: deps.tokens,
          onTokenFetch: (outcome) => deps.metrics.tokenFetches.inc({ provider: provider.name, outcome }),
        },
      );
      break;
    case 'script': {
      const host = scriptHost(deps.http, provider, secrets);
      const tokens = opts.applyTokenEffects ? deps.tokens : readOnlyTokens(deps.tokens);
      script = await timedScript(deps.metrics, provider, 'request', () =>
        signWithScript(req, provider, host, tokens, (outcome) =>
          deps.metrics.tokenFetches.inc({ provider: provider.name, outcome }),
        ),
      );
      break;
    }
  }

  const url = absoluteUrl(req.uri, config.prefixUrl);
  assertEgressAllowed(provider, secrets, url);
  const query = samePairs(req.query, originalQuery) ? rawQuery : serializeQuery(req.query);
  if (query) url.search = url.search ? `${url.search}&${query}` : `?${query}`;
  // A raw body signing left as it was goes on as the caller sent it (decoded from its
  // content-encoding): scripts get it as UTF-8 text, and writing that back would corrupt bytes
  // that are not UTF-8 (an upload). Valid UTF-8 comes back the same either way.
  const serialized =
    !bodyIsSigned || sameBody(bodyBefore, req.body)
      ? { bytes: bodyBytes.length > 0 ? bodyBytes : undefined, contentType }
      : serializeBody(req.body, contentType);
  // Scripts may set headers in any letter case; the wire gets one header per name, and a
  // Content-Type the script chose wins over the one keygate derives from the body kind.
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) headers[name.toLowerCase()] = value;
  headers['x-request-id'] = call.requestId;
  const contentTypeSetByScript = script !== undefined && headers['content-type'] !== contentType;
  if (serialized.bytes && serialized.contentType && !contentTypeSetByScript) {
    headers['content-type'] = serialized.contentType;
  }
  return {
    wire: {
      method: req.method,
      url: url.toString(),
      headers,
      body: serialized.bytes,
      timeoutMs: config.timeoutMs,
    },
    script,
    sentToken,
  };
}

/**
 * Response hook, token drop on 401, secret masking; the caller gets the upstream's status. The
 * dry-run shares it and passes `scriptLogs` to get the response script's log() lines.
 */
export async function answerFromUpstream(
  deps: Pick<OutboundDeps, 'tokens' | 'http' | 'metrics' | 'logger'>,
  provider: LoadedProvider,
  secrets: ProviderSecrets,
  upstream: UpstreamResponse,
  requestId: string,
  sentToken: string | undefined,
  scriptLogs?: string[],
): Promise<ProxyAnswer> {
  const contentEncoding = firstHeader(upstream.headers['content-encoding']);
  let body = decodeContentEncoding(upstream.body, contentEncoding, 'upstream response');
  const headers = withoutHopByHop(upstream.headers, RECOMPUTED_RESPONSE_HEADERS);

  if (sentToken && upstream.status === 401) {
    // Only the token we sent: another node may already have fetched a new one.
    await deps.tokens.delete(provider.tenantId, provider.name, sentToken);
  }
  if (provider.response) {
    const rawBody = body.toString('utf8');
    // A JSON answer is parsed inside the sandbox, once.
    const rawIsJson = mayBeJsonAnswer(firstHeader(headers['content-type']), rawBody);
    const result = await timedScript(deps.metrics, provider, 'response', () =>
      provider.response!.runResponse(
        { status: upstream.status, headers: flattenHeaders(headers), rawBody, rawIsJson },
        { ...scriptHost(deps.http, provider, secrets), token: null },
      ),
    );
    logScriptOutput(deps, requestId, provider, 'response', result.effects.logs);
    scriptLogs?.push(...result.effects.logs);
    await applyTokenEffects(result.effects, provider, deps.tokens);
    if (result.bodyText !== null) body = Buffer.from(result.bodyText);
  }

  const mask = maskerFor(secrets);
  const maskedHeaders: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    maskedHeaders[name] = Array.isArray(value) ? value.map(mask) : mask(value);
  }
  maskedHeaders['x-request-id'] = requestId;
  return {
    status: upstream.status,
    headers: maskedHeaders,
    body: Buffer.from(mask(body.toString('latin1')), 'latin1'),
  };
}

/** A script's `log()` lines (already masked by the sandbox) go to the debug log. */
function logScriptOutput(
  deps: Pick<OutboundDeps, 'logger'>,
  requestId: string,
  provider: LoadedProvider,
  kind: 'request' | 'response',
  lines: string[] | undefined,
): void {
  if (lines?.length) {
    deps.logger.debug(
      { requestId, provider: provider.name, version: provider.version, kind, lines },
      'script log',
    );
  }
}

/** The built-ins' view of the world; `http_post_json` goes through the egress check. */
export function scriptHost(
  http: HttpClient,
  provider: LoadedProvider,
  secrets: ProviderSecrets,
): Omit<ScriptHost, 'token'> {
  return {
    secrets: secrets.values,
    unreadableSecrets: secrets.unreadable,
    sensitiveValues: sensitiveValuesOf(secrets),
    prefixUrl: provider.config.prefixUrl,
    tokenUrl: provider.config.tokenUrl ?? '',
    async httpPostJson(url, body, headers) {
      const target = absoluteUrl(url, provider.config.prefixUrl);
      assertEgressAllowed(provider, secrets, target, 'http_post_json');
      const res = await http.send({
        method: 'POST',
        url: target.toString(),
        headers: { 'content-type': 'application/json', accept: 'application/json', ...lowerKeys(headers) },
        body: Buffer.from(JSON.stringify(body ?? null)),
        timeoutMs: provider.config.timeoutMs,
      });
      return res.body.toString('utf8');
    },
  };
}

export function assertEgressAllowed(
  provider: LoadedProvider,
  secrets: ProviderSecrets,
  url: URL,
  what = 'request',
): void {
  if (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    provider.egress.has(url.host.toLowerCase())
  ) {
    return;
  }
  throw new KeygateError(
    'KG_EGRESS_DENIED',
    `${what} to ${maskHost(secrets, `${url.protocol}//${url.host}`)} is not allowed for provider ${provider.name}; add the host to allowedHosts`,
  );
}

/**
 * A host name for an error detail, secrets masked: a script may have built the host from a secret,
 * and URL parsing lower-cases host names, so the match ignores case (built on error paths only).
 */
export function maskHost(secrets: ProviderSecrets, host: string): string {
  return createMasker(sensitiveValuesOf(secrets), { ignoreCase: true })(host);
}

/** `/<provider>/<path>` of a proxy URL; the path is kept exactly as sent (not decoded). */
export function parseProxyTarget(
  pathAndQuery: string,
): { provider: string; upstreamPathAndQuery: string } | undefined {
  const m = /^\/v1\/proxy\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/.exec(pathAndQuery);
  if (!m) return undefined;
  return { provider: m[1]!, upstreamPathAndQuery: `${m[2] ?? '/'}${m[3] ?? ''}` };
}

export function isValidProviderName(name: string): boolean {
  return PROVIDER_NAME.test(name);
}

/**
 * Whether signing handed back the raw text it got (or no body). JSON and forms always go out
 * written from their value, as `reqBody.raw()` shows them to scripts.
 */
function sameBody(before: BodyValue, after: BodyValue): boolean {
  if (before.kind === 'none') return after.kind === 'none';
  return before.kind === 'raw' && after.kind === 'raw' && after.text === before.text;
}

function splitPathAndQuery(s: string): { path: string; rawQuery: string } {
  const q = s.indexOf('?');
  return q < 0 ? { path: s, rawQuery: '' } : { path: s.slice(0, q), rawQuery: s.slice(q + 1) };
}

function absoluteUrl(uri: string, prefixUrl: string): URL {
  try {
    if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) return new URL(uri);
    return new URL(prefixUrl.replace(/\/+$/, '') + (uri.startsWith('/') ? uri : `/${uri}`));
  } catch {
    throw new KeygateError('KG_SCRIPT_ERROR', `the request URI is not a valid URL`);
  }
}

function forwardableRequestHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(withoutHopByHop(headers, CALLER_ONLY_HEADERS))) {
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function flattenHeaders(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The secret store hands out one frozen object per load, so this is computed once per load. */
const sensitiveValues = new WeakMap<ProviderSecrets, string[]>();

export function sensitiveValuesOf(secrets: ProviderSecrets): string[] {
  let values = sensitiveValues.get(secrets);
  if (!values) {
    values = Object.entries(secrets.values)
      .filter(([name]) => secrets.sensitive.has(name))
      .map(([, v]) => v);
    sensitiveValues.set(secrets, values);
  }
  return values;
}

export const maskerFor = (secrets: ProviderSecrets): ((s: string) => string) => secrets.mask;

async function timedScript<T extends { durationUs: number }>(
  metrics: Metrics,
  provider: LoadedProvider,
  kind: 'request' | 'response',
  run: () => Promise<T>,
): Promise<T> {
  try {
    const result = await run();
    metrics.scriptDuration.observe({ provider: provider.name, kind }, result.durationUs / 1e6);
    return result;
  } catch (err) {
    metrics.scriptErrors.inc({
      provider: provider.name,
      code: err instanceof KeygateError ? err.code : 'KG_INTERNAL',
    });
    throw err;
  }
}

/** Token cache view for dry-runs: reads the real cache, never changes it. */
function readOnlyTokens(tokens: TokenCache): TokenCache {
  return {
    get: (t, p) => tokens.get(t, p),
    set: async () => {},
    delete: async () => {},
    getOrFetch: async (_t, _p, fetch) => {
      const r = await fetch();
      return { token: r.token, expiresAtMs: null };
    },
    close: async () => {},
  };
}
