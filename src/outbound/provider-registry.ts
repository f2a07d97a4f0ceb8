/**
 * Active provider versions, compiled once per version and held in memory. A cheap revision
 * check runs at most every `pollMs` per provider (in the background, never on the request path
 * once loaded), and a config event triggers it at once. When the store is unreachable the last
 * known-good version keeps serving.
 */
import { KeygateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { CompiledScript, Sandbox } from '../sandbox/index.ts';
import type { ConfigEvents } from '../services/context.ts';
import { egressHosts, type ProviderConfig } from '../services/provider-config.ts';
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
  close(): void;
}

export function createProviderRegistry(opts: {
  db: Db;
  sandbox: Sandbox;
  configEvents: ConfigEvents;
  pollMs: number;
  logger: Logger;
}): ProviderRegistry {
  const { db, sandbox, pollMs, logger } = opts;
  const entries = new Map<string, Entry>();
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

  function refresh(tenantId: string, name: string, entry: Entry): Promise<void> {
    entry.refreshing ??= load(tenantId, name, entry.provider)
      .then((provider) => {
        entry.provider = provider;
        entry.checkedAt = Date.now();
      })
      .catch((err: unknown) => {
        // Keep serving the last-known-good version; try again after the next poll interval.
        entry.checkedAt = Date.now();
        logger.warn(
          { err: errorSummary(err), tenantId, provider: name },
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
      const key = keyOf(tenantId, name);
      let entry = entries.get(key);
      if (!entry) {
        const fresh: Entry = { provider: null, checkedAt: 0, refreshing: undefined };
        try {
          fresh.provider = await load(tenantId, name, null);
        } catch (err) {
          if (err instanceof KeygateError) throw err;
          logger.warn({ err: errorSummary(err), tenantId, provider: name }, 'provider config unavailable');
          throw new KeygateError(
            'KG_CONFIG_UNAVAILABLE',
            `configuration of provider ${name} could not be loaded`,
          );
        }
        fresh.checkedAt = Date.now();
        entry = entries.get(key) ?? fresh;
        entries.set(key, entry);
      } else if (Date.now() - entry.checkedAt >= pollMs) {
        void refresh(tenantId, name, entry);
      }
      if (!entry.provider) throw new KeygateError('KG_PROVIDER_NOT_FOUND', `provider ${name} not found`);
      return entry.provider;
    },
    loaded: () => [...entries.values()].flatMap((e) => (e.provider ? [e.provider] : [])),
    close: unsubscribe,
  };
}

function errorSummary(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
