/**
 * The one error type keygate raises, its stable codes, and problem+json rendering.
 * Codes are part of the public contract: never rename one; add new ones at the end of a group.
 * Every code is documented in README.md (a test checks that).
 */

export const ERROR_CODES = {
  // Generic request problems
  KG_BAD_REQUEST: { status: 400, title: 'Malformed request' },
  KG_VALIDATION_FAILED: { status: 400, title: 'Request failed validation' },
  KG_UNAUTHENTICATED: { status: 401, title: 'Missing or invalid credentials' },
  KG_FORBIDDEN: { status: 403, title: 'Not allowed' },
  KG_NOT_FOUND: { status: 404, title: 'Not found' },
  KG_CONFLICT: { status: 409, title: 'Conflicting change' },
  KG_PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  KG_INTERNAL: { status: 500, title: 'Internal gateway error' },
  KG_NOT_READY: { status: 503, title: 'Dependencies not reachable' },
  KG_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  KG_REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time' },

  // Outbound proxy
  KG_PROVIDER_NOT_FOUND: { status: 404, title: 'Unknown provider' },
  KG_SECRET_MISSING: { status: 500, title: 'Provider secret not set' },
  KG_SECRETS_UNAVAILABLE: { status: 503, title: 'Secrets could not be loaded' },
  KG_CONFIG_UNAVAILABLE: { status: 503, title: 'Provider configuration could not be loaded' },
  KG_SCRIPT_SYNTAX: { status: 400, title: 'Script does not compile' },
  KG_SCRIPT_ERROR: { status: 502, title: 'Signing script failed' },
  KG_SCRIPT_TIMEOUT: { status: 502, title: 'Signing script exceeded its CPU time limit' },
  KG_SCRIPT_MEMORY: { status: 502, title: 'Signing script exceeded its memory limit' },
  KG_EGRESS_DENIED: { status: 502, title: 'Destination host not allowed' },
  KG_TOKEN_FETCH_FAILED: { status: 502, title: 'Could not obtain an access token' },
  KG_UPSTREAM_UNREACHABLE: { status: 502, title: 'Upstream not reachable' },
  KG_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream did not answer in time' },
  KG_UPSTREAM_TOO_LARGE: { status: 502, title: 'Upstream answer too large' },
  KG_UPSTREAM_UNDECODABLE: { status: 502, title: 'Upstream answer could not be decoded' },
  KG_SECRET_UNREADABLE: { status: 500, title: 'Provider secret cannot be decrypted' },

  // Inbound API
  KG_AUTH_HEADER_MISSING: { status: 401, title: 'Signature header missing' },
  KG_AUTH_HEADER_DUPLICATED: { status: 400, title: 'Signature header sent more than once' },
  KG_TIMESTAMP_INVALID: { status: 401, title: 'Timestamp is not unix seconds' },
  KG_TIMESTAMP_STALE: { status: 401, title: 'Timestamp outside the allowed window' },
  KG_NONCE_INVALID: { status: 401, title: 'Nonce has the wrong length or characters' },
  KG_NONCE_REPLAYED: { status: 401, title: 'Nonce already used' },
  KG_KEY_UNKNOWN: { status: 401, title: 'Unknown API key' },
  KG_KEY_REVOKED: { status: 401, title: 'API key revoked' },
  KG_SIGNATURE_MISMATCH: { status: 401, title: 'Signature does not match' },
  KG_QUERY_MALFORMED: { status: 400, title: 'Malformed percent-escape in query' },
  KG_ROUTE_NOT_FOUND: { status: 404, title: 'No route for this path' },
  KG_ROUTE_FORBIDDEN: { status: 403, title: 'Key not allowed on this route' },
  KG_RATE_LIMITED: { status: 429, title: 'Rate limit exceeded' },
  KG_RATE_LIMITER_UNAVAILABLE: { status: 503, title: 'Rate limiter unavailable' },
  KG_AUDIT_UNAVAILABLE: { status: 503, title: 'Calls cannot be audited now' },

  // Admin API
  KG_TOKEN_EXPIRED: { status: 401, title: 'Admin token expired or revoked' },
  KG_VERSION_CONFLICT: { status: 409, title: 'Active version changed concurrently' },
  KG_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported request content type' },
  KG_ALREADY_REVOKED: { status: 409, title: 'Already revoked or retired' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Codes for a condition that passes on its own: their answers carry `Retry-After` (seconds). */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  KG_AUDIT_UNAVAILABLE: 1,
};

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  requestId?: string;
  [extra: string]: unknown;
}

/** The only error class keygate throws on purpose; anything else is reported as KG_INTERNAL. */
export class KeygateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra problem+json members (for example `errors` with field paths, or `canonicalSha256`). */
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(detail ?? ERROR_CODES[code].title, options);
    this.name = 'KeygateError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.extra = extra;
  }
}

export function isKeygateError(value: unknown): value is KeygateError {
  return value instanceof KeygateError;
}

/** `KG_SIGNATURE_MISMATCH` -> `urn:keygate:error:signature-mismatch` */
export function errorType(code: ErrorCode): string {
  return `urn:keygate:error:${code.slice(3).toLowerCase().replaceAll('_', '-')}`;
}

/** Turns any thrown value into problem+json; non-keygate errors never leak their message. */
export function toProblem(err: unknown, requestId?: string): ProblemDetails {
  const e = isKeygateError(err) ? err : new KeygateError('KG_INTERNAL');
  return {
    ...e.extra,
    type: errorType(e.code),
    title: ERROR_CODES[e.code].title,
    status: e.status,
    detail: e.message,
    code: e.code,
    ...(requestId ? { requestId } : {}),
  };
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const ERROR_HEADER = 'Keygate-Error';

/** A ready-to-send problem+json Response (used by every listener). */
export function problemResponse(err: unknown, requestId?: string): Response {
  const problem = toProblem(err, requestId);
  const headers: Record<string, string> = {
    'content-type': PROBLEM_CONTENT_TYPE,
    [ERROR_HEADER]: problem.code,
  };
  const retryAfter = RETRY_AFTER_SECONDS[problem.code];
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return new Response(JSON.stringify(problem), { status: problem.status, headers });
}
