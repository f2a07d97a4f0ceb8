/**
 * The shared token cache: tokens live in Redis, one fetch at a time runs across all nodes, and a
 * short in-process L1 keeps the hot path free of network round trips.
 *
 * L1 and invalidation. A token read from Redis is served from L1 for at most `l1TtlMs` (1 s) and
 * never past its refresh point. Every set or delete also publishes on the token's channel and each
 * node holds one pattern subscription to all token channels, so another node's L1 copy is dropped
 * as soon as the message arrives (milliseconds), not when its TTL runs out. The TTL is the
 * backstop for messages lost while a subscriber reconnects: a missed invalidation costs at most
 * one second. A read that overlaps an invalidation does not refill L1, so a reply that left Redis
 * before a delete cannot resurrect the deleted token.
 *
 * Single flight. Callers on one node share one in-flight promise per key; that flight then runs
 * the CLAIM script, which in one round trip returns the token if it is fresh, or takes the lock
 * (`SET lock <flight> PX lockTtl`, only when free) or reports who holds it. The holder fetches and
 * runs STORE, which writes the token (PX = its remaining lifetime), compare-and-deletes the lock
 * and publishes. Waiters wake on that message, or poll every `pollIntervalMs` if it is lost, and
 * re-run CLAIM. When the fetch fails the holder writes the error under `tokenError` with its flight
 * id and releases the lock: waiters of that flight throw it, and the next request fetches again.
 * A holder that dies leaves a lock that expires after `lockTtlMs`; the next CLAIM takes it over.
 *
 * Redis down (error, timeout, or a connection that is reconnecting). Nothing fails because of it:
 * get() answers from L1 even past its TTL while the token is fresh (last known good), or null;
 * getOrFetch() does the same, else fetches directly, still one fetch at a time per node, and keeps
 * the result in L1; set() keeps the token in L1; delete() drops it from L1 (other nodes' L1 copies
 * lapse within their TTL; the Redis copy is dropped by the next node that sees a 401). After a
 * failure Redis is not asked again for `redisRetryAfterMs`, so an outage costs no per-request
 * timeouts, and each failure that opens that window is passed to `onRedisError` (at most one report
 * per window, plus the subscriber connection's own errors).
 *
 * `fetch` must time out on its own, sooner than `lockTtlMs`: a fetch that outlives the lock lets
 * another node start a second one.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ERROR_CODES, type ErrorCode, isKeygateError, KeygateError } from '../../errors.ts';
import { redisKeys } from '../../storage/redis-keys.ts';
import { DEFAULT_SKEW_MS, isFresh, type StoredToken, toCachedToken, toStoredToken } from './expire-time.ts';
import type { CachedToken, FetchedToken, TokenCache } from './index.ts';
import { singleFlight } from './single-flight.ts';

export interface RedisTokenCacheOptions {
  /** How long a fetching node holds the cluster-wide lock; must exceed the fetch's own timeout. */
  lockTtlMs?: number;
  /** How long a caller waits for another node's fetch before failing with KG_TOKEN_FETCH_FAILED. */
  waitTimeoutMs?: number;
  now?: () => number;
  /** Refresh this long before expiry (or 10% of the lifetime when shorter). */
  skewMs?: number;
  /** Longest time an L1 entry is served without asking Redis. */
  l1TtlMs?: number;
  /** How often a waiter re-checks Redis when no pub/sub message wakes it sooner. */
  pollIntervalMs?: number;
  /** A Redis call slower than this counts as Redis being down. */
  redisTimeoutMs?: number;
  /** After a Redis failure, how long to skip Redis and work from this node alone. */
  redisRetryAfterMs?: number;
  /** Told of the Redis failures the cache absorbs (at most one per redisRetryAfterMs), for logs and metrics. */
  onRedisError?: (error: unknown) => void;
}

const UNREACHABLE_STATUSES = new Set(['reconnecting', 'close', 'end']);
const REMOTE_FETCH_FAILED = 'the token fetch failed on another keygate node';

export function createRedisTokenCache(redis: Redis, options: RedisTokenCacheOptions = {}): TokenCache {
  const {
    lockTtlMs = 10_000,
    waitTimeoutMs = lockTtlMs + 5_000,
    now = Date.now,
    skewMs = DEFAULT_SKEW_MS,
    l1TtlMs = 1_000,
    pollIntervalMs = 100,
    redisTimeoutMs = 1_000,
    redisRetryAfterMs = 1_000,
    onRedisError = () => {},
  } = options;
  for (const [name, value] of Object.entries({ lockTtlMs, waitTimeoutMs, pollIntervalMs, redisTimeoutMs })) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`);
  }
  for (const [name, value] of Object.entries({ skewMs, l1TtlMs, redisRetryAfterMs })) {
    if (!(value >= 0)) throw new RangeError(`${name} must be >= 0`);
  }
  // Long enough for every waiter of a failed flight to poll at least once.
  const errorTtlMs = Math.max(5_000, pollIntervalMs * 10);

  const nodeId = randomUUID();
  const l1 = new Map<string, { entry: StoredToken; servedUntil: number }>();
  const inflight = new Map<string, Promise<CachedToken>>();
  const waiters = new Map<string, Set<() => void>>();
  // Per key, bumped by every invalidation: a Redis read that overlapped one must not refill L1.
  const generations = new Map<string, number>();
  const generation = (key: string) => generations.get(key) ?? 0;
  const invalidate = (key: string) => generations.set(key, generation(key) + 1);
  let redisDownUntil = 0;

  const subscriber = redis.duplicate();
  subscriber.on('error', onRedisError);
  subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => {
    let event: { op?: unknown; key?: unknown; node?: unknown };
    try {
      event = JSON.parse(message) as typeof event;
    } catch {
      return;
    }
    if (typeof event.key !== 'string') return;
    if (event.node !== nodeId && event.op !== 'error') {
      invalidate(event.key);
      l1.delete(event.key);
    }
    for (const wake of [...(waiters.get(event.key) ?? [])]) wake();
  });
  // If Redis is down now, ioredis subscribes on reconnect; until then the L1 TTL bounds staleness.
  subscriber.psubscribe(redisKeys.tokenChannelPattern()).catch(onRedisError);

  /** Runs one Redis call, or throws at once when Redis is known to be down. */
  async function callRedis<T>(op: () => Promise<T>): Promise<T> {
    if (Date.now() < redisDownUntil) throw new Error('Redis is unreachable');
    let pending: Promise<T> | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (UNREACHABLE_STATUSES.has(redis.status)) throw new Error(`Redis connection is ${redis.status}`);
      pending = op();
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Redis did not answer within ${redisTimeoutMs} ms`)),
            redisTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      pending?.catch(() => {});
      redisDownUntil = Date.now() + redisRetryAfterMs;
      onRedisError(error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  function l1Hit(key: string): CachedToken | null {
    const hit = l1.get(key);
    const t = now();
    return hit && t < hit.servedUntil && isFresh(hit.entry, t) ? toCachedToken(hit.entry) : null;
  }

  /** L1 regardless of its TTL, for when Redis cannot be asked. */
  function lastKnownGood(key: string): CachedToken | null {
    const hit = l1.get(key);
    return hit && isFresh(hit.entry, now()) ? toCachedToken(hit.entry) : null;
  }

  function remember(key: string, entry: StoredToken | null): void {
    if (entry && isFresh(entry, now())) l1.set(key, { entry, servedUntil: now() + l1TtlMs });
    else l1.delete(key);
  }

  function keysOf(tenantId: string, provider: string) {
    return {
      token: redisKeys.token(tenantId, provider),
      lock: redisKeys.tokenLock(tenantId, provider),
      error: redisKeys.tokenError(tenantId, provider),
      channel: redisKeys.tokenChannel(tenantId, provider),
    };
  }

  function event(op: 'set' | 'del' | 'error', key: string): string {
    return JSON.stringify({ op, key, node: nodeId });
  }

  /** Writes a token and/or a failed flight's error, releases `flight`'s lock, tells every node. */
  async function store(
    keys: ReturnType<typeof keysOf>,
    write: { flight?: string; entry?: StoredToken; error?: string },
  ): Promise<void> {
    const { entry } = write;
    invalidate(keys.token);
    if (entry) l1.set(keys.token, { entry, servedUntil: now() + l1TtlMs });
    const px = entry?.expiresAtMs == null ? '' : Math.max(1, Math.ceil(entry.expiresAtMs - now()));
    try {
      await callRedis(() =>
        STORE(
          redis,
          [keys.token, keys.lock, keys.error],
          [
            write.flight ?? '',
            entry ? JSON.stringify(entry) : '',
            px,
            write.error ?? '',
            errorTtlMs,
            keys.channel,
            event(write.error ? 'error' : 'set', keys.token),
          ],
        ),
      );
    } catch {
      // Absorbed (see the file comment): the token stays in this node's L1.
    }
  }

  async function fetchAndStore(
    keys: ReturnType<typeof keysOf>,
    fetch: () => Promise<FetchedToken>,
    flight: string,
  ): Promise<CachedToken> {
    let entry: StoredToken;
    try {
      const fetched = await fetch();
      entry = toStoredToken(fetched?.token, fetched?.expireTime, now(), skewMs);
    } catch (error) {
      await store(keys, { flight, error: fetchErrorRecord(flight, error) });
      throw error;
    }
    await store(keys, { flight, entry });
    return toCachedToken(entry);
  }

  /** Listens for a message on a token's channel; register before asking Redis so none is missed. */
  function listen(key: string) {
    let woken = false;
    let wakeUp = () => {};
    const set = waiters.get(key) ?? new Set();
    waiters.set(key, set);
    const onEvent = () => {
      woken = true;
      wakeUp();
    };
    set.add(onEvent);
    const stop = () => {
      set.delete(onEvent);
      if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
    };
    const until = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => wakeUp(), ms);
        wakeUp = () => {
          clearTimeout(timer);
          stop();
          resolve();
        };
        if (woken) wakeUp();
      });
    return { stop, until };
  }

  async function clusterFlight(
    keys: ReturnType<typeof keysOf>,
    fetch: () => Promise<FetchedToken>,
  ): Promise<CachedToken> {
    const flight = `${nodeId}:${randomUUID()}`;
    const giveUpAt = Date.now() + waitTimeoutMs;
    let awaited = '';
    for (;;) {
      const listener = listen(keys.token);
      const before = generation(keys.token);
      let claim: Claim;
      try {
        const reply = await callRedis(() =>
          CLAIM(redis, [keys.token, keys.lock, keys.error], [now(), flight, lockTtlMs, awaited]),
        );
        claim = parseClaim(reply);
      } catch {
        listener.stop();
        // Redis down: this node fetches on its own, still one fetch at a time (the caller's flight).
        return lastKnownGood(keys.token) ?? fetchAndStore(keys, fetch, flight);
      }
      if (claim.kind !== 'wait') listener.stop();
      switch (claim.kind) {
        case 'token':
          if (before === generation(keys.token)) remember(keys.token, claim.entry);
          return toCachedToken(claim.entry);
        case 'failed':
          throw claim.error;
        case 'acquired':
          return fetchAndStore(keys, fetch, flight);
        case 'wait': {
          awaited = claim.flight;
          const left = giveUpAt - Date.now();
          if (left <= 0) {
            listener.stop();
            throw new KeygateError(
              'KG_TOKEN_FETCH_FAILED',
              `another keygate node has been fetching this token for more than ${waitTimeoutMs} ms`,
            );
          }
          await listener.until(Math.min(pollIntervalMs, left));
        }
      }
    }
  }

  return {
    async get(tenantId, provider) {
      const key = redisKeys.token(tenantId, provider);
      const hit = l1Hit(key);
      if (hit) return hit;
      const before = generation(key);
      let raw: string | null;
      try {
        raw = await callRedis(() => redis.get(key));
      } catch {
        return lastKnownGood(key);
      }
      const entry = raw === null ? null : parseStoredToken(raw);
      if (before === generation(key)) remember(key, entry);
      return entry && isFresh(entry, now()) ? toCachedToken(entry) : null;
    },

    async set(tenantId, provider, token, expireTime) {
      await store(keysOf(tenantId, provider), { entry: toStoredToken(token, expireTime, now(), skewMs) });
    },

    async delete(tenantId, provider, onlyToken) {
      const keys = keysOf(tenantId, provider);
      invalidate(keys.token);
      if (onlyToken === undefined || l1.get(keys.token)?.entry.token === onlyToken) l1.delete(keys.token);
      try {
        await callRedis(() =>
          DELETE(redis, [keys.token], [onlyToken ?? '', keys.channel, event('del', keys.token)]),
        );
      } catch {
        // Absorbed (see the file comment).
      }
    },

    async getOrFetch(tenantId, provider, fetch) {
      const key = redisKeys.token(tenantId, provider);
      return (
        l1Hit(key) ?? singleFlight(inflight, key, () => clusterFlight(keysOf(tenantId, provider), fetch))
      );
    },

    async close() {
      subscriber.disconnect();
      l1.clear();
      // Waiters fall back to polling Redis.
      for (const set of waiters.values()) for (const wake of [...set]) wake();
    },
  };
}

type Claim =
  | { kind: 'token'; entry: StoredToken }
  | { kind: 'wait'; flight: string }
  | { kind: 'acquired' }
  | { kind: 'failed'; error: KeygateError };

function parseClaim(reply: unknown): Claim {
  const [kind, value] = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (typeof value === 'string') {
    if (kind === 'acquired') return { kind };
    if (kind === 'wait') return { kind, flight: value };
    if (kind === 'failed') return { kind, error: errorFromRecord(value) };
    const entry = kind === 'token' ? parseStoredToken(value) : null;
    if (entry) return { kind: 'token', entry };
  }
  throw new Error('unexpected reply from the token claim script');
}

function parseStoredToken(raw: string): StoredToken | null {
  try {
    const v = JSON.parse(raw) as Partial<Record<keyof StoredToken, unknown>>;
    const { token, expiresAtMs, refreshAtMs } = v;
    const numberOrNull = (x: unknown) => x === null || typeof x === 'number';
    if (typeof token === 'string' && numberOrNull(expiresAtMs) && numberOrNull(refreshAtMs)) {
      return { token, expiresAtMs: expiresAtMs as number | null, refreshAtMs: refreshAtMs as number | null };
    }
  } catch {}
  return null;
}

/** What other nodes' waiters learn of a failed fetch: keygate errors as they are, others generically. */
function fetchErrorRecord(flight: string, error: unknown): string {
  const { code, message } = isKeygateError(error)
    ? error
    : { code: 'KG_TOKEN_FETCH_FAILED' as const, message: REMOTE_FETCH_FAILED };
  return JSON.stringify({ flight, code, message });
}

function errorFromRecord(raw: string): KeygateError {
  try {
    const { code, message } = JSON.parse(raw) as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) && typeof message === 'string') {
      return new KeygateError(code as ErrorCode, message);
    }
  } catch {}
  return new KeygateError('KG_TOKEN_FETCH_FAILED', REMOTE_FETCH_FAILED);
}

/** A Lua script run by EVALSHA, loaded with EVAL the first time a server lacks it. */
function luaScript(source: string) {
  const sha = createHash('sha1').update(source).digest('hex');
  return async (redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return redis.eval(source, keys.length, ...keys, ...args);
    }
  };
}

/**
 * KEYS token, lock, error. ARGV now ms, flight id, lock TTL ms, flight awaited ('' = none).
 * -> {'token', json} | {'failed', error json} (the awaited flight failed) | {'wait', holder's flight}
 *    | {'acquired', flight id}
 */
const CLAIM = luaScript(`
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, entry = pcall(cjson.decode, raw)
  if ok and type(entry) == 'table' and type(entry.token) == 'string' then
    local refreshAt = entry.refreshAtMs
    if refreshAt == cjson.null or (type(refreshAt) == 'number' and tonumber(ARGV[1]) < refreshAt) then
      return {'token', raw}
    end
  end
end
if ARGV[4] ~= '' then
  local failure = redis.call('GET', KEYS[3])
  if failure then
    local ok, record = pcall(cjson.decode, failure)
    if ok and type(record) == 'table' and record.flight == ARGV[4] then return {'failed', failure} end
  end
end
local holder = redis.call('GET', KEYS[2])
if holder then return {'wait', holder} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {'acquired', ARGV[2]}
`);

/**
 * KEYS token, lock, error. ARGV flight id whose lock to release ('' = none), token json ('' = none),
 * PX ms ('' = no expiry), error json ('' = none), error TTL ms, channel, event.
 */
const STORE = luaScript(`
if ARGV[2] ~= '' then
  if ARGV[3] ~= '' then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[2])
  end
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5]) end
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
`);

/** KEYS token. ARGV only this token ('' = whatever is cached), channel, event. */
const DELETE = luaScript(`
if ARGV[1] ~= '' then
  local raw = redis.call('GET', KEYS[1])
  if not raw then return 0 end
  local ok, entry = pcall(cjson.decode, raw)
  if ok and type(entry) == 'table' and entry.token ~= ARGV[1] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`);
