/**
 * The one HTTP client: a keep-alive undici Agent shared by the outbound proxy, token fetches,
 * `http_post_json` and the inbound gateway's forwarding. Maps network failures to stable gateway codes.
 */
import { Agent, type Dispatcher, errors as undiciErrors } from 'undici';
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

/**
 * The Content-Length of a proxied answer (RFC 9110 8.6): none on a 1xx or 204; on a HEAD or 304
 * the length of the representation a GET would get, which only the upstream knows (`declared`,
 * else none); otherwise the body's length.
 */
export function answerLength(
  method: string | undefined,
  status: number,
  bodyLength: number,
  declared?: string | string[],
): string | undefined {
  if (status < 200 || status === 204) return undefined;
  if (method === 'HEAD' || status === 304) return typeof declared === 'string' ? declared : undefined;
  return String(bodyLength);
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

  /**
   * One exchange on undici's dispatch API: the answer is collected as it arrives, without the
   * stream that `request()` wraps around every body, and the deadline aborts through the
   * dispatch controller instead of an AbortController per request.
   */
  function send(req: UpstreamRequest): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const target = splitUrl(req.url);
      if (target === null) {
        reject(toGatewayError(new TypeError('invalid URL'), req, maxResponseBytes));
        return;
      }
      const exchange = new Exchange(
        resolve,
        (err) => reject(toGatewayError(err, req, maxResponseBytes)),
        req.timeoutMs,
      );
      try {
        agent.dispatch(
          {
            origin: target.origin,
            path: target.path,
            method: req.method as 'GET',
            headers: req.headers,
            body: req.body,
            headersTimeout: req.timeoutMs,
            bodyTimeout: req.timeoutMs,
          },
          exchange,
        );
      } catch (err) {
        exchange.onResponseError(null, err as Error);
      }
    });
  }

  return { send, close: () => agent.close() };
}

/**
 * The handler of one exchange (undici's DispatchHandler): collects the answer and settles once,
 * with the answer, an undici error, or the deadline.
 */
class Exchange {
  #controller: Dispatcher.DispatchController | null = null;
  #deadlinePassed: DOMException | null = null;
  #status = 0;
  #headers: Record<string, string | string[]> = {};
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #settled = false;
  readonly #timer: NodeJS.Timeout;
  readonly #resolve: (res: UpstreamResponse) => void;
  readonly #reject: (err: unknown) => void;

  constructor(resolve: (res: UpstreamResponse) => void, reject: (err: unknown) => void, timeoutMs: number) {
    this.#resolve = resolve;
    this.#reject = reject;
    // The whole exchange has `timeoutMs`, queueing for a connection included.
    this.#timer = setTimeout(() => {
      this.#deadlinePassed = new DOMException('upstream deadline passed', 'TimeoutError');
      if (this.#controller !== null) this.#controller.abort(this.#deadlinePassed);
      else this.onResponseError(null, this.#deadlinePassed);
    }, timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#deadlinePassed !== null) controller.abort(this.#deadlinePassed);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[]>,
  ): void {
    if (statusCode < 200) return; // 1xx: the real answer follows
    this.#status = statusCode;
    this.#headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    this.#resolve({ status: this.#status, headers: this.#headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#reject(this.#deadlinePassed ?? err);
  }
}

/** `scheme://host[:port]` and the rest (at least `/`) of an absolute URL; null if it is not one. */
function splitUrl(url: string): { origin: string; path: string } | null {
  const scheme = url.indexOf('://');
  if (scheme <= 0) return null;
  const slash = url.indexOf('/', scheme + 3);
  const query = url.indexOf('?', scheme + 3);
  const end =
    slash === -1 ? (query === -1 ? url.length : query) : query === -1 ? slash : Math.min(slash, query);
  const origin = url.slice(0, end);
  if (origin.length === scheme + 3) return null;
  const rest = url.slice(end);
  return { origin, path: rest.startsWith('/') ? rest : `/${rest}` };
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
  // Reached, but what came back is not an HTTP/1.1 answer (undici's parser refused it, or an
  // unsolicited `100 Continue`, which undici does not accept): say so rather than "not reachable".
  if (
    err instanceof undiciErrors.HTTPParserError ||
    (err instanceof undiciErrors.SocketError && /^bad (response|upgrade)$/.test(err.message))
  ) {
    return new KeygateError(
      'KG_UPSTREAM_UNREACHABLE',
      `${host} answered with something that is not a valid HTTP/1.1 response${code ? ` (${code})` : ''}`,
    );
  }
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
