/**
 * The one HTTP client: a keep-alive undici Agent shared by the outbound proxy, token fetches,
 * `http_post_json` and the inbound gateway's forwarding. Maps network failures to stable gateway codes.
 */
import { Agent, request, errors as undiciErrors } from 'undici';
import { KeygateError } from './errors.ts';

/** Headers that describe one connection, not the message (RFC 9110 7.6.1), plus ones we recompute. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
  'content-length',
]);

export interface UpstreamRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  timeoutMs: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

export type HttpClient = ReturnType<typeof createHttpClient>;

/**
 * `maxResponseBytes` bounds what an upstream answer may hold in memory: keygate reads answers
 * whole (to mask secrets, run response hooks and write audit rows), so an endless or huge answer
 * must fail the request, not the process.
 */
export function createHttpClient(opts: { connections?: number; maxResponseBytes?: number } = {}) {
  const maxResponseBytes = opts.maxResponseBytes ?? 32 * 1024 * 1024;
  const agent = new Agent({
    keepAliveTimeout: 10_000,
    connections: opts.connections ?? 128,
    connect: { timeout: 5_000 },
    maxResponseSize: maxResponseBytes,
  });

  async function send(req: UpstreamRequest): Promise<UpstreamResponse> {
    // The whole exchange has `timeoutMs`. Not AbortSignal.timeout: its timer outlives the request
    // and fires (building a DOMException and an abort event) for every request ever sent.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('upstream deadline passed', 'TimeoutError')),
      req.timeoutMs,
    );
    try {
      const res = await request(req.url, {
        method: req.method as 'GET',
        headers: req.headers,
        body: req.body,
        dispatcher: agent,
        signal: controller.signal,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers as Record<string, string | string[]>, body };
    } catch (err) {
      throw toGatewayError(err, req, maxResponseBytes);
    } finally {
      clearTimeout(timer);
    }
  }

  return { send, close: () => agent.close() };
}

function toGatewayError(err: unknown, req: UpstreamRequest, maxResponseBytes: number): KeygateError {
  const host = safeHost(req.url);
  if (err instanceof undiciErrors.ResponseExceededMaxSizeError) {
    return new KeygateError(
      'KG_UPSTREAM_TOO_LARGE',
      `${host} answered with more than ${maxResponseBytes} bytes`,
    );
  }
  if (
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    (err instanceof DOMException && err.name === 'TimeoutError') ||
    (err as { name?: string })?.name === 'TimeoutError'
  ) {
    return new KeygateError('KG_UPSTREAM_TIMEOUT', `${host} did not answer within ${req.timeoutMs} ms`);
  }
  if (err instanceof undiciErrors.ConnectTimeoutError) {
    return new KeygateError('KG_UPSTREAM_UNREACHABLE', `connecting to ${host} timed out`);
  }
  const code = (err as { code?: string })?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  return new KeygateError('KG_UPSTREAM_UNREACHABLE', `${host} not reachable${code ? ` (${code})` : ''}`);
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid url)';
  }
}

/** The hop-by-hop set plus each caller's extra names, built once per distinct list. */
const dropSets = new WeakMap<readonly string[], Set<string>>();
const NO_EXTRA_DROP: readonly string[] = [];

/**
 * Drops hop-by-hop headers, including those the message's own Connection header names. Pass
 * `extraDrop` as a module constant: its set is built once and reused.
 */
export function withoutHopByHop<T extends string | string[] | undefined>(
  headers: Record<string, T>,
  extraDrop: readonly string[] = NO_EXTRA_DROP,
): Record<string, Exclude<T, undefined>> {
  let drop = dropSets.get(extraDrop);
  if (drop === undefined) {
    drop = new Set(HOP_BY_HOP);
    for (const h of extraDrop) drop.add(h);
    dropSets.set(extraDrop, drop);
  }
  const connection = headers.connection ?? headers.Connection;
  const named = connection
    ? String(connection)
        .split(',')
        .map((token) => token.trim().toLowerCase())
    : NO_EXTRA_DROP;
  const out: Record<string, Exclude<T, undefined>> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (!drop.has(lower) && !named.includes(lower)) out[lower] = value as Exclude<T, undefined>;
  }
  return out;
}
