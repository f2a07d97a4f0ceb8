/**
 * Active provider versions, compiled once per version and held in memory. A cheap revision
 * check runs at most every `pollMs` per provider (in the background, never on the request path
 * once loaded), and a config event triggers it at once. When the store is unreachable the last
 * known-good version keeps serving.
 */
import { KeygateError } from '../errors.ts';
import { type Logger, summarizeError } from '../logger.ts';
import type { CompiledScript, Sandbox } from '../sandbox/index.ts';
import type { ConfigEvents } from '../services/context.ts';
import { egressHosts, PROVIDER_NAME, type ProviderConfig } from '../services/provider-config.ts';
import { loadActiveProviderConfig } from '../services/providers.ts';
import type { Db } from '../storage/db.ts';

export interface LoadedProvider {
  tenantId: string;
  name: string;
  version: number;
  revision: number;
  config: ProviderConfig;
  egress: Set<string>;
  request: CompiledScript | undefined;
  response: CompiledScript | undefined;
  /** The request script fetches and saves its own token: single-flight it when none is cached. */
  scriptFetchesToken: boolean;
}

interface Entry {
  provider: LoadedProvider | null;
  checkedAt: number;
  refreshing: Promise<void> | undefined;
}

export interface ProviderRegistry {
  get(tenantId: string, name: string): Promise<LoadedProvider>;
  /** Loaded version per provider, for metrics and readiness. */
  loaded(): LoadedProvider[];
  /**
   * Whether some tenant's provider of this name has been loaded: a caller's URL may name anything,
   * so only these names may become metric labels.
   */
  isKnownName(name: string): boolean;
  close(): void;
}

export function createProviderRegistry(opts: {
  db: Db;
  sandbox: Sandbox;
  configEvents: ConfigEvents;
  pollMs: number;
  logger: Logger;
  /** How many "no such provider" answers are remembered (oldest forgotten first). */
  maxMissing?: number;
}): ProviderRegistry {
  const { db, sandbox, pollMs, logger, maxMissing = 1_000 } = opts;
  const entries = new Map<string, Entry>();
  /** Keys of entries holding no provider, oldest first: bounded, as callers choose the names. */
  const missing = new Set<string>();
  const knownNames = new Set<string>();
  const keyOf = (tenantId: string, name: string) => `${tenantId}\u0000${name}`;

  const unsubscribe = opts.configEvents.subscribe((tenantId, name) => {
    const entry = entries.get(keyOf(tenantId, name));
    if (!entry) return;
    entry.checkedAt = 0;
    void refresh(tenantId, name, entry);
  });

  async function load(
    tenantId: string,
    name: string,
    previous: LoadedProvider | null,
  ): Promise<LoadedProvider | null> {
    const row = await loadActiveProviderConfig(db, tenantId, name);
    if (!row) return null;
    if (previous && previous.version === row.version && previous.revision === row.revision) return previous;
    const cacheKey = `${tenantId}:${name}:v${row.version}`;
    const { config } = row;
    const request = config.request
      ? await sandbox.compile('request', config.request, `${cacheKey}:request`)
      : undefined;
    const response = config.response
      ? await sandbox.compile('response', config.response, `${cacheKey}:response`)
      : undefined;
    if (previous && previous.version !== row.version)
      sandbox.evict(`${tenantId}:${name}:v${previous.version}:`);
    return {
      tenantId,
      name,
      version: row.version,
      revision: row.revision,
      config,
      egress: egressHosts(config),
      request,
      response,
      scriptFetchesToken:
        !!config.request &&
        /\bhttp_post_json\b/.test(config.request) &&
        /\btoken_save\b/.test(config.request),
    };
  }

  /** Records what a load found, keeping the not-found entries within `maxMissing`. */
  function settle(key: string, entry: Entry, provider: LoadedProvider | null): void {
    entry.provider = provider;
    entry.checkedAt = Date.now();
    if (provider) {
      knownNames.add(provider.name);
      missing.delete(key);
      return;
    }
    missing.delete(key);
    missing.add(key);
    while (missing.size > maxMissing) {
      const oldest = missing.values().next().value!;
      missing.delete(oldest);
      entries.delete(oldest);
    }
  }

  function refresh(tenantId: string, name: string, entry: Entry): Promise<void> {
    entry.refreshing ??= load(tenantId, name, entry.provider)
      .then((provider) => {
        if (entries.get(keyOf(tenantId, name)) === entry) settle(keyOf(tenantId, name), entry, provider);
        else {
          entry.provider = provider;
          entry.checkedAt = Date.now();
        }
      })
      .catch((err: unknown) => {
        // Keep serving the last-known-good version; try again after the next poll interval.
        entry.checkedAt = Date.now();
        logger.warn(
          { err: summarizeError(err), tenantId, provider: name },
          'provider config refresh failed; keeping last-known-good',
        );
      })
      .finally(() => {
        entry.refreshing = undefined;
      });
    return entry.refreshing;
  }

  return {
    async get(tenantId, name) {
      // Names no provider can have are answered without a lookup or a cache entry.
      if (!PROVIDER_NAME.test(name))
        throw new KeygateError(
          'KG_PROVIDER_NOT_FOUND',
          'no such provider (names are 1-100 of a-z 0-9 . _ - and start alphanumeric)',
        );
      const key = keyOf(tenantId, name);
      let entry = entries.get(key);
      if (!entry) {
        const fresh: Entry = { provider: null, checkedAt: 0, refreshing: undefined };
        let provider: LoadedProvider | null;
        try {
          provider = await load(tenantId, name, null);
        } catch (err) {
          if (err instanceof KeygateError) throw err;
          logger.warn({ err: summarizeError(err), tenantId, provider: name }, 'provider config unavailable');
          throw new KeygateError(
            'KG_CONFIG_UNAVAILABLE',
            `configuration of provider ${name} could not be loaded`,
          );
        }
        entry = entries.get(key);
        if (!entry) {
          entry = fresh;
          entries.set(key, entry);
          settle(key, entry, provider);
        }
      } else if (Date.now() - entry.checkedAt >= pollMs) {
        void refresh(tenantId, name, entry);
      }
      if (!entry.provider) throw new KeygateError('KG_PROVIDER_NOT_FOUND', `provider ${name} not found`);
      return entry.provider;
    },
    loaded: () => [...entries.values()].flatMap((e) => (e.provider ? [e.provider] : [])),
    isKnownName: (name) => knownNames.has(name),
    close: unsubscribe,
  };
}
