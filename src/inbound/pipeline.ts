/**
 * The inbound hot path, top to bottom (DESIGN.md "Inbound API"):
 *
 *   request target -> signature headers (timestamp window, nonce format) -> body, hashed as it
 *   streams (413 past the limit) -> partner key (unknown / revoked) -> signature (either live
 *   secret) -> audit rows can be kept (503) -> nonce (replay), then rate limit (429), in one Redis
 *   round trip -> route (404 / 403) -> forward -> answer, then one audit row for the call,
 *   whatever happened.
 *
 * Each step is a named function below that either returns what the next step needs or throws a
 * KeygateError; `handleInboundCall` turns a throw into the problem+json answer. The `InboundCall`
 * record collects what the audit row needs as the steps go.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ERROR_HEADER,
  type ErrorCode,
  isKeygateError,
  KeygateError,
  PROBLEM_CONTENT_TYPE,
  RETRY_AFTER_SECONDS,
  toProblem,
} from '../errors.ts';
import { answerLength, type HttpClient, type UpstreamResponse, withoutHopByHop } from '../http-client.ts';
import { newId } from '../ids.ts';
import { type Logger, summarizeError } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { toDbTime } from '../storage/db.ts';
import type { AuditOutcome, NewAuditLogRow } from '../storage/schema.ts';
import { hasDotSegment } from '../url-path.ts';
import type { Admission } from './admission.ts';
import type { AuditWriter } from './audit/index.ts';
import { capBody, redactedHeadersJson } from './audit/redact.ts';
import { type ClientAddressResolver, unmapped } from './client-address.ts';
import type { PartnerKeyForGateway } from './key-cache.ts';
import type { LkgCache } from './lkg-cache.ts';
import { type RateLimitDecision, type RateLimiter, rateLimitHeaders } from './ratelimit/index.ts';
import { type InboundRoute, type RouteTable, selectRoute } from './routes.ts';
import { canonicalString, SIGNATURE_HEADERS, splitRequestTarget } from './signature/canonical.ts';
import {
  assertContentLengthWithinLimit,
  type HashedBody,
  hashBodyWithLimit,
  parseSignatureHeaders,
  type SignatureHeaders,
  verifyPartnerSignature,
} from './signature/verify.ts';

export interface InboundSettings {
  clockSkewSeconds: number;
  maxBodyBytes: number;
  auditBodyCapBytes: number;
  /** The partner's address: the peer, or behind trusted proxies from X-Forwarded-For. */
  clientAddress: ClientAddressResolver;
  /** An info line for every call; without it only 5xx answers are logged. */
  accessLog: boolean;
}

export interface InboundDeps {
  keys: LkgCache<PartnerKeyForGateway>;
  routes: LkgCache<RouteTable>;
  /** Nonce claim, then quota spend. */
  admission: Admission;
  /** For the quota headers of a call refused before it spent anything. */
  limiter: RateLimiter;
  http: HttpClient;
  audit: AuditWriter;
  logger: Logger;
  metrics: Metrics;
  settings: InboundSettings;
}

/** One partner call as it moves through the steps: what the answer and the audit row are built from. */
interface InboundCall {
  requestId: string;
  startedAt: number;
  clientIp: string | null;
  method: string;
  /** The request target as sent: path and query, not decoded. */
  target: string;
  path: string;
  rawQuery: string;
  key?: PartnerKeyForGateway;
  secretVersion?: number;
  requestBody?: Buffer;
  /** The body was refused for its size and never read past the limit. */
  requestBodyRefused?: boolean;
  rateLimit?: RateLimitDecision;
  route?: InboundRoute;
  answer?: {
    status: number;
    headers: Record<string, string | string[]>;
    body: Buffer;
    outcome: AuditOutcome;
  };
}

/** Partner credentials: verified here, never forwarded. */
const PARTNER_AUTH_HEADERS = Object.values(SIGNATURE_HEADERS).map((h) => h.toLowerCase());
/** Set by the gateway for the internal service; a partner cannot supply them. */
const GATEWAY_HEADERS = ['x-request-id', 'x-partner-key-id', 'x-real-ip'];
const STRIPPED_REQUEST_HEADERS = [...PARTNER_AUTH_HEADERS, ...GATEWAY_HEADERS];
const MAX_AUDIT_PATH = 2048;

export async function handleInboundCall(
  deps: InboundDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const call = beginCall(deps, req);
  try {
    checkRequestTarget(call);
    const auth = readSignatureHeaders(deps, req);
    const body = await readSignedBody(deps, req, call);
    const key = await findPartnerKey(deps, auth.keyId, call);
    call.secretVersion = verifySignature(call, auth, key, body);
    refuseWhileAuditBlocked(deps);
    await claimNonceAndSpendQuota(deps, key, auth, call);
    call.route = await findRoute(deps, key, call.path);
    const upstream = await forwardToUpstream(deps, call, call.route, key, req, body);
    answerFromUpstream(res, call, upstream);
  } catch (err) {
    await answerWithProblem(deps, req, res, call, err);
  } finally {
    recordCall(deps, req, call);
  }
}

// ---- the steps ----------------------------------------------------------------------------

function beginCall(deps: InboundDeps, req: IncomingMessage): InboundCall {
  const target = req.url ?? '/';
  const { path, rawQuery } = splitRequestTarget(target);
  return {
    // Always our own id: it is the audit row's key, so a partner must not be able to choose it.
    requestId: newId('req'),
    startedAt: performance.now(),
    clientIp: deps.settings.clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for']),
    method: req.method ?? 'GET',
    target,
    path,
    rawQuery,
  };
}

/**
 * Only origin-form targets (`/path?query`), and no dot segments, even percent-encoded: the path
 * goes upstream unchanged, and an upstream that normalised `/orders/../admin` would otherwise
 * serve a path no route allowed.
 */
function checkRequestTarget(call: InboundCall): void {
  if (!call.target.startsWith('/')) {
    throw new KeygateError('KG_BAD_REQUEST', 'the request target must be a path starting with /');
  }
  if (hasDotSegment(call.path)) {
    throw new KeygateError('KG_BAD_REQUEST', 'the path must not contain "." or ".." segments');
  }
}

function readSignatureHeaders(deps: InboundDeps, req: IncomingMessage): SignatureHeaders {
  return parseSignatureHeaders(req.headers, {
    rawHeaders: req.rawHeaders,
    nowSeconds: Math.floor(Date.now() / 1000),
    timestampWindowSeconds: deps.settings.clockSkewSeconds,
  });
}

/** Hashes the body as it arrives; refuses it (413) before holding more than the limit. */
async function readSignedBody(
  deps: InboundDeps,
  req: IncomingMessage,
  call: InboundCall,
): Promise<HashedBody> {
  try {
    assertContentLengthWithinLimit(req.headers['content-length'], deps.settings.maxBodyBytes);
    const body = await hashBodyWithLimit(req, deps.settings.maxBodyBytes);
    call.requestBody = body.body;
    return body;
  } catch (err) {
    if (isKeygateError(err) && err.code === 'KG_PAYLOAD_TOO_LARGE') call.requestBodyRefused = true;
    // The partner went away mid-body: its problem, not the gateway's.
    if (!isKeygateError(err) && (req.destroyed || !req.complete)) {
      throw new KeygateError('KG_BAD_REQUEST', 'the request body was cut off', {}, { cause: err });
    }
    throw err;
  }
}

async function findPartnerKey(
  deps: InboundDeps,
  keyId: string,
  call: InboundCall,
): Promise<PartnerKeyForGateway> {
  const key = await deps.keys.get(keyId);
  if (!key) throw new KeygateError('KG_KEY_UNKNOWN', 'X-Api-Key names no partner key');
  call.key = key;
  if (key.status === 'revoked') throw new KeygateError('KG_KEY_REVOKED', 'this partner key was revoked');
  return key;
}

/** Returns the version of the secret that matched (either of two during a rotation). */
function verifySignature(
  call: InboundCall,
  auth: SignatureHeaders,
  key: PartnerKeyForGateway,
  body: HashedBody,
): number {
  const canonical = canonicalString({
    method: call.method,
    path: call.path,
    rawQuery: call.rawQuery,
    keyId: auth.keyId,
    timestamp: auth.timestamp,
    nonce: auth.nonce,
    bodySha256Hex: body.sha256Hex,
  });
  return verifyPartnerSignature({ canonical, signatureHex: auth.signatureHex, secrets: key.secrets })
    .matchedVersion;
}

/**
 * The audit writer cannot currently make a row durable: the spool holds KEYGATE_AUDIT_SPOOL_MAX_BYTES
 * of rows still to replay (MySQL has been down a long while), or its disk refuses appends while
 * MySQL cannot take the rows either. A call forwarded now might never be audited, so none is until
 * that ends. Checked before the nonce and the quota, so the partner can retry the same call at no cost.
 */
function refuseWhileAuditBlocked(deps: InboundDeps): void {
  if (deps.audit.auditBlocked()) {
    throw new KeygateError(
      'KG_AUDIT_UNAVAILABLE',
      'the audit trail cannot take more calls right now; retry shortly',
    );
  }
}

/**
 * A replayed nonce is refused before it spends anything; a first-use nonce spends one request of
 * the key's quota, and the decision goes on every answer from here on.
 */
async function claimNonceAndSpendQuota(
  deps: InboundDeps,
  key: PartnerKeyForGateway,
  auth: SignatureHeaders,
  call: InboundCall,
): Promise<void> {
  const decision = await deps.admission.admit(key.keyId, auth.nonce, key.policy);
  if (decision === 'replayed') {
    throw new KeygateError('KG_NONCE_REPLAYED', 'this nonce was already used with this key');
  }
  call.rateLimit = decision;
  if (!decision.allowed) {
    const wait = decision.retryAfterSeconds ?? decision.resetSeconds;
    throw new KeygateError('KG_RATE_LIMITED', `the rate limit of this key is exhausted; retry in ${wait} s`);
  }
}

async function findRoute(deps: InboundDeps, key: PartnerKeyForGateway, path: string): Promise<InboundRoute> {
  return selectRoute(await deps.routes.get(key.tenantId), path, key);
}

/** Path and query unchanged; partner credentials and hop-by-hop headers dropped; ours added. */
async function forwardToUpstream(
  deps: InboundDeps,
  call: InboundCall,
  route: InboundRoute,
  key: PartnerKeyForGateway,
  req: IncomingMessage,
  body: HashedBody,
): Promise<UpstreamResponse> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(withoutHopByHop(req.headers, STRIPPED_REQUEST_HEADERS))) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  headers['x-request-id'] = call.requestId;
  headers['x-partner-key-id'] = key.keyId;
  // As Kong and nginx do: the peer's address is appended to X-Forwarded-For (what came before it is
  // only as good as the proxies that wrote it), X-Real-IP is the client's address (the peer, or
  // from X-Forwarded-For behind trusted proxies), and Via names this hop.
  const peer = req.socket.remoteAddress && unmapped(req.socket.remoteAddress);
  if (peer)
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${peer}` : peer;
  if (call.clientIp) headers['x-real-ip'] = call.clientIp;
  headers.via = headers.via ? `${headers.via}, 1.1 keygate` : '1.1 keygate';
  const declaresBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  return deps.http.send({
    method: call.method,
    url: route.upstream + call.target,
    headers,
    body: body.size > 0 || declaresBody ? body.body : undefined,
    timeoutMs: route.timeoutMs,
  });
}

function answerFromUpstream(res: ServerResponse, call: InboundCall, upstream: UpstreamResponse): void {
  const headers: Record<string, string | string[]> = withoutHopByHop(upstream.headers);
  // The body goes on unchanged, so a HEAD or 304 keeps the upstream's declared length.
  const length = answerLength(
    call.method,
    upstream.status,
    upstream.body.length,
    upstream.headers['content-length'],
  );
  if (length === undefined) delete headers['content-length'];
  else headers['content-length'] = length;
  Object.assign(headers, call.rateLimit ? rateLimitHeaders(call.rateLimit) : {});
  headers['x-request-id'] = call.requestId;
  res.writeHead(upstream.status, headers);
  res.end(upstream.body);
  call.answer = { status: upstream.status, headers, body: upstream.body, outcome: 'ok' };
}

/**
 * problem+json with `Keygate-Error`. Once the key is known, the rate-limit headers come too: from
 * this call's decision, or, for a call refused before it spent anything, a look at the quota
 * (cost 0) that spends nothing.
 */
async function answerWithProblem(
  deps: InboundDeps,
  req: IncomingMessage,
  res: ServerResponse,
  call: InboundCall,
  err: unknown,
): Promise<void> {
  const problem = toProblem(err, call.requestId);
  if (!isKeygateError(err)) {
    deps.logger.error(
      { requestId: call.requestId, err: summarizeError(err, { stack: true }) },
      'inbound call failed unexpectedly',
    );
  }
  if (!call.rateLimit && call.key?.status === 'active' && problem.code !== 'KG_RATE_LIMITER_UNAVAILABLE') {
    call.rateLimit = await deps.limiter.decide(call.key.keyId, call.key.policy, 0).catch(() => undefined);
  }
  const body = Buffer.from(JSON.stringify(problem));
  const headers: Record<string, string> = {
    ...(call.rateLimit ? rateLimitHeaders(call.rateLimit) : {}),
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': String(body.length),
    [ERROR_HEADER]: problem.code,
    'x-request-id': call.requestId,
  };
  // A Retry-After the exhausted quota already set asks for the longer wait: it stays.
  const retryAfter = RETRY_AFTER_SECONDS[problem.code];
  if (retryAfter !== undefined) headers['Retry-After'] ??= String(retryAfter);
  // A body left unread (refused early, or too large) is not drained: the connection goes instead.
  if (!req.complete) headers.connection = 'close';
  try {
    if (res.headersSent) throw new Error('answer already started');
    res.writeHead(problem.status, headers);
    res.end(body);
  } catch {
    res.destroy();
  }
  call.answer = { status: problem.status, headers, body, outcome: outcomeOf(problem.code) };
}

/** The audit row (queued, written off the request path), the metrics and the debug line. */
function recordCall(deps: InboundDeps, req: IncomingMessage, call: InboundCall): void {
  const latencyMs = performance.now() - call.startedAt;
  const answer = call.answer ?? {
    status: 500,
    headers: {},
    body: Buffer.alloc(0),
    outcome: 'error' as const,
  };
  const cap = deps.settings.auditBodyCapBytes;
  const requestBody = call.requestBody ? capBody(call.requestBody, cap) : { text: '', truncated: false };
  const responseBody = capBody(answer.body, cap);
  const row: NewAuditLogRow = {
    request_id: call.requestId,
    tenant_id: call.key?.tenantId ?? null,
    key_id: call.key?.keyId ?? null,
    secret_version: call.secretVersion ?? null,
    client_ip: call.clientIp,
    method: call.method,
    path: call.path.length > MAX_AUDIT_PATH ? call.path.slice(0, MAX_AUDIT_PATH) : call.path,
    query: call.rawQuery,
    request_headers: redactedHeadersJson(req.headers),
    request_body: requestBody.text,
    request_body_truncated: requestBody.truncated || call.requestBodyRefused ? 1 : 0,
    response_status: answer.status,
    response_headers: redactedHeadersJson(answer.headers),
    response_body: responseBody.text,
    response_body_truncated: responseBody.truncated ? 1 : 0,
    latency_ms: Math.round(latencyMs),
    outcome: answer.outcome,
    created_at: toDbTime(),
  };
  // A call with a route went to its upstream (the route is the last check). The row of a call
  // keygate refused may be shed while the audit is far behind (see AuditWriter).
  deps.audit.write(row, { forwarded: call.route !== undefined });

  deps.metrics.recordRequest('inbound', call.route?.prefix ?? '-', answer.status, latencyMs / 1000);
  deps.metrics.inboundOutcomes.inc({ outcome: answer.outcome });
  // The access log: one line per call, at warn for 5xx answers.
  const level = answer.status >= 500 ? 'warn' : 'info';
  if ((level === 'warn' || deps.settings.accessLog) && deps.logger.isLevelEnabled(level)) {
    deps.logger[level](
      {
        requestId: call.requestId,
        keyId: call.key?.keyId,
        method: call.method,
        path: call.path,
        status: answer.status,
        outcome: answer.outcome,
        code: errorCodeOf(answer),
        secretVersion: call.secretVersion,
        ms: Math.round(latencyMs * 10) / 10,
      },
      answer.status >= 500 ? 'inbound call failed' : 'inbound call',
    );
  }
}

// ---- helpers --------------------------------------------------------------------------------

const OUTCOMES: Partial<Record<ErrorCode, AuditOutcome>> = {
  KG_BAD_REQUEST: 'bad_request',
  KG_AUTH_HEADER_MISSING: 'bad_request',
  KG_AUTH_HEADER_DUPLICATED: 'bad_request',
  KG_TIMESTAMP_INVALID: 'bad_request',
  KG_NONCE_INVALID: 'bad_request',
  KG_QUERY_MALFORMED: 'bad_request',
  KG_TIMESTAMP_STALE: 'bad_signature',
  KG_SIGNATURE_MISMATCH: 'bad_signature',
  KG_NONCE_REPLAYED: 'replayed',
  KG_KEY_UNKNOWN: 'unknown_key',
  KG_KEY_REVOKED: 'revoked_key',
  KG_ROUTE_FORBIDDEN: 'forbidden',
  KG_ROUTE_NOT_FOUND: 'not_found',
  KG_PAYLOAD_TOO_LARGE: 'too_large',
  KG_RATE_LIMITED: 'rate_limited',
  KG_UPSTREAM_UNREACHABLE: 'upstream_error',
  KG_UPSTREAM_TIMEOUT: 'upstream_error',
  KG_UPSTREAM_TOO_LARGE: 'upstream_error',
};

function outcomeOf(code: ErrorCode): AuditOutcome {
  return OUTCOMES[code] ?? 'error';
}

function errorCodeOf(answer: { headers: Record<string, string | string[]> }): string | undefined {
  const code = answer.headers[ERROR_HEADER];
  return typeof code === 'string' ? code : undefined;
}
