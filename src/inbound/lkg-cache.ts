/**
 * A small read-through cache for the inbound hot path (partner keys, route tables): answers from
 * memory, refreshes in the background once an entry is older than `ttlMs`, and keeps serving the
 * last-known-good value while the database is unreachable. A value that was never loaded fails
 * with 503 KG_NOT_READY. "Nothing there" (undefined) is cached like any value, so unknown ids do
 * not reach the database on every request.
 */
import { KeygateError } from '../errors.ts';
import { summarizeError } from '../logger.ts';

export interface LkgCacheOptions<V> {
  /** What the cache holds: undefined means "no such thing" and is cached too. */
  load(key: string): Promise<V | undefined>;
  /** Age after which an entry is refreshed (in the background). */
  ttlMs: number;
  /** Bound on entries; the oldest-loaded go first. */
  maxEntries?: number;
  /** What the 503 names when a value was never loaded. */
  what: string;
  logger?: { warn(details: object, message: string): void };
  /**
   * Called with each value the cache keeps, when it keeps it: a load that an invalidate overtook
   * is handed to its callers but not kept, and not passed here.
   */
  onStore?(key: string, value: V | undefined): void;
  /**
   * Called with each key whose entry the cache drops to stay within `maxEntries`, so that what
   * `onStore` recorded for it can be dropped too; a load of the dropped entry that is still running
   * is handed to its callers but not kept, and not passed to `onStore`.
   */
  onEvict?(key: string): void;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

export interface LkgCache<V> {
  get(key: string): Promise<V | undefined>;
  /** The next get waits for a fresh value (falling back to the cached one if loading fails). */
  invalidate(key: string): void;
  /** Every entry is reloaded on its next get. */
  invalidateAll(): void;
}

interface Entry<V> {
  /** False until the first load succeeded. */
  hasValue: boolean;
  value: V | undefined;
  /** When the last load (successful or not) finished. */
  loadedAt: number;
  /** Set by invalidate: the next get waits for a reload instead of serving this copy. */
  stale: boolean;
  /** Bumped by invalidate, so a load that began before the change cannot store its older result. */
  generation: number;
  loading: Promise<V | undefined> | undefined;
}

export function createLkgCache<V>({
  load,
  ttlMs,
  maxEntries = 50_000,
  what,
  logger,
  onStore,
  onEvict,
  now = Date.now,
}: LkgCacheOptions<V>): LkgCache<V> {
  if (!(ttlMs > 0)) throw new RangeError(`createLkgCache: ttlMs must be positive, got ${ttlMs}`);
  if (!(maxEntries > 0))
    throw new RangeError(`createLkgCache: maxEntries must be positive, got ${maxEntries}`);
  const entries = new Map<string, Entry<V>>();

  /** One load per key at a time; a failure leaves the cached copy in place. */
  function reload(key: string, entry: Entry<V>): Promise<V | undefined> {
    if (entry.loading) return entry.loading;
    const generation = entry.generation;
    const loading = load(key).then(
      (value) => {
        entry.loadedAt = now();
        if (entry.generation === generation) {
          entry.value = value;
          entry.hasValue = true;
          entry.stale = false;
          // Not for an entry evicted meanwhile: onEvict already said the key is gone.
          if (entries.get(key) === entry) onStore?.(key, value);
        }
        return value;
      },
      (err: unknown) => {
        // Try again after one TTL rather than on every request while the database is down.
        entry.loadedAt = now();
        if (entry.generation === generation) entry.stale = false;
        logger?.warn(
          {
            what,
            key,
            servingLastKnownGood: entry.hasValue,
            err: summarizeError(err),
          },
          'inbound cache: load failed',
        );
        throw err;
      },
    );
    const settled = loading.finally(() => {
      if (entry.loading === settled) entry.loading = undefined;
    });
    entry.loading = settled;
    return settled;
  }

  function remember(key: string, entry: Entry<V>): void {
    if (entries.size >= maxEntries) {
      const oldest = entries.keys().next();
      if (!oldest.done) {
        entries.delete(oldest.value);
        onEvict?.(oldest.value);
      }
    }
    entries.set(key, entry);
  }

  const cache: LkgCache<V> = {
    async get(key) {
      let entry = entries.get(key);
      if (entry?.hasValue) {
        const cached = entry;
        if (cached.stale) return reload(key, cached).catch(() => cached.value);
        if (!cached.loading && now() - cached.loadedAt >= ttlMs) reload(key, cached).catch(() => {});
        return cached.value;
      }
      if (!entry) {
        entry = {
          hasValue: false,
          value: undefined,
          loadedAt: 0,
          stale: false,
          generation: 0,
          loading: undefined,
        };
        remember(key, entry);
      }
      const pending = entry;
      try {
        return await reload(key, pending);
      } catch (err) {
        if (!pending.hasValue && entries.get(key) === pending) entries.delete(key);
        if (err instanceof KeygateError && err.status < 500) throw err;
        throw new KeygateError(
          'KG_NOT_READY',
          `${what} could not be loaded: a dependency is unreachable`,
          {},
          { cause: err },
        );
      }
    },
    invalidate(key) {
      const entry = entries.get(key);
      if (!entry) return;
      entry.generation++;
      entry.stale = true;
      entry.loading = undefined;
    },
    invalidateAll() {
      for (const key of entries.keys()) cache.invalidate(key);
    },
  };
  return cache;
}
