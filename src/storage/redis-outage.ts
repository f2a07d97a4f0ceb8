/**
 * The one outage rule for Redis on the hot paths: a call waits at most `timeoutMs` for Redis;
 * after a failure Redis is left alone for `retryAfterMs` and then probed by a single request,
 * while every other request takes the fallback at once. So an outage costs no per-request waits.
 */
import { isKeygateError } from '../errors.ts';
import { summarizeError } from '../logger.ts';
import { withTimeout } from '../with-timeout.ts';

export interface RedisOutageLogger {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}

export interface RedisOutageGuard {
  /**
   * `viaRedis` unless Redis is known to be down; `withoutRedis` while it is, or when this call
   * fails or times out. A KeygateError from `viaRedis` is an answer, not an outage: it passes through.
   */
  call<T>(viaRedis: () => Promise<T>, withoutRedis: () => Promise<T> | T): Promise<T>;
}

export interface RedisOutageOptions {
  /** Names the user in log lines, e.g. `rate limiter`. */
  what: string;
  /** What happens meanwhile, for the warning, e.g. `keys fall back to their onRedisDown policy`. */
  whileDown: string;
  timeoutMs: number;
  retryAfterMs: number;
  logger?: RedisOutageLogger;
  now?: () => number;
}

export function createRedisOutageGuard(options: RedisOutageOptions): RedisOutageGuard {
  const { what, whileDown, timeoutMs, retryAfterMs, logger, now = Date.now } = options;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
  if (!(retryAfterMs >= 0)) throw new RangeError(`retryRedisAfterMs must be >= 0, got ${retryAfterMs}`);
  /** Set while Redis is considered down. */
  let outage: { since: number; lastFailureAt: number } | undefined;
  let probeInFlight = false;

  return {
    async call(viaRedis, withoutRedis) {
      let probing = false;
      if (outage !== undefined) {
        if (probeInFlight || now() - outage.lastFailureAt < retryAfterMs) return withoutRedis();
        probeInFlight = probing = true;
      }
      try {
        const result = await withTimeout(
          viaRedis(),
          timeoutMs,
          () => new Error(`Redis did not answer in ${timeoutMs} ms`),
        );
        if (outage !== undefined) {
          logger?.info({ downForMs: now() - outage.since }, `${what}: Redis reachable again`);
          outage = undefined;
        }
        return result;
      } catch (err) {
        if (isKeygateError(err)) throw err;
        const failedAt = now();
        if (outage === undefined) {
          logger?.warn({ err: summarizeError(err) }, `${what}: Redis unreachable; ${whileDown}`);
        }
        outage = { since: outage?.since ?? failedAt, lastFailureAt: failedAt };
        return withoutRedis();
      } finally {
        if (probing) probeInFlight = false;
      }
    },
  };
}
