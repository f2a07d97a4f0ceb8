/**
 * Builds every long-lived part once at start-up, from the config, and hands them out.
 * Nothing here is a module-level singleton: tests build as many as they like.
 */
import { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import { createHttpClient, type HttpClient } from '../http-client.ts';
import { createLogger, type Logger, summarizeError } from '../logger.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { createProviderRegistry, type ProviderRegistry } from '../outbound/provider-registry.ts';
import { createServiceAuthenticator, type ServiceAuthenticator } from '../outbound/service-auth.ts';
import {
  createMemoryTokenCache,
  createRedisTokenCache,
  type TokenCache,
} from '../outbound/token-cache/index.ts';
import { createSandbox, type Sandbox } from '../sandbox/index.ts';
import { setTimerSlack } from '../sandbox/timer-slack.ts';
import { createKeyProvider } from '../secrets/key-provider.ts';
import { createSecretStore, type SecretStore } from '../secrets/secret-store.ts';
import type { ConfigEvents, ServiceContext } from '../services/context.ts';
import { createLocalConfigEvents, createRedisConfigEvents } from '../storage/config-events.ts';
import { createDatabase, type Db, type DbDialect } from '../storage/db.ts';
import { migrateToLatest } from '../storage/migrate.ts';
import { createReadiness, type Readiness } from './readiness.ts';
import { StartupError } from './startup-error.ts';

export interface Services {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  dialect: DbDialect;
  redis: Redis | undefined;
  secrets: SecretStore;
  sandbox: Sandbox;
  tokens: TokenCache;
  configEvents: ConfigEvents;
  http: HttpClient;
  providers: ProviderRegistry;
  authenticateService: ServiceAuthenticator;
  /** What transport-agnostic services (CLI and admin API) get. */
  ctx: ServiceContext;
  /** What `/readyz` reports on every listener. */
  readiness: Readiness;
  close(): Promise<void>;
}

export async function createServices(
  config: Readonly<Config>,
  opts: { logger?: Logger; migrate?: boolean } = {},
): Promise<Services> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const closers: Array<() => Promise<unknown> | unknown> = [];
  try {
    const { db, dialect } = createDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
    closers.push(() => db.destroy());
    await checkDatabase(db, config, opts.migrate ?? config.migrateOnStart);

    const keyProvider = createKeyProvider(config.kms);
    closers.push(() => keyProvider.close());
    try {
      await keyProvider.check();
    } catch (err) {
      throw new StartupError((err as Error).message);
    }

    let redis: Redis | undefined;
    let configEvents: ConfigEvents;
    let tokens: TokenCache;
    if (config.redisUrl) {
      redis = await connectRedis(config.redisUrl);
      const subscriber = redis.duplicate();
      subscriber.on('error', () => {
        // Reconnects (and re-subscribes) on its own, like the main connection.
      });
      closers.push(() => redis!.quit().catch(() => redis!.disconnect()));
      configEvents = createRedisConfigEvents(redis, subscriber);
      tokens = createRedisTokenCache(redis, {
        onRedisError: (err) =>
          logger.warn({ err: summarizeError(err) }, 'token cache: Redis unreachable, using this node only'),
      });
    } else {
      configEvents = createLocalConfigEvents();
      tokens = createMemoryTokenCache();
    }
    closers.push(
      () => configEvents.close(),
      () => tokens.close(),
    );

    const metrics = createMetrics();
    const secrets = createSecretStore({ db, keyProvider, dataKeyTtlMs: config.dataKeyTtlMs, logger });
    metrics.watchUnreadableSecrets(() => secrets.unreadableCounts());
    // Before the sandbox starts any thread, so that isolated-vm's threads inherit it.
    setTimerSlack(config.timerSlackUs);
    const sandbox = createSandbox(config.script);
    closers.push(() => sandbox.dispose());
    const http = createHttpClient({ maxResponseBytes: config.maxUpstreamResponseBytes });
    closers.push(() => http.close());
    // A secret set on any node is announced like a config change: reload it on the next request.
    configEvents.subscribe((tenantId, provider) => secrets.invalidate(tenantId, provider));
    const providers = createProviderRegistry({
      db,
      sandbox,
      configEvents,
      pollMs: config.configPollMs,
      logger,
    });
    closers.push(() => providers.close());

    const readiness = createReadiness({
      database: () => db.selectFrom('tenants').select('id').limit(1).execute(),
      ...(redis
        ? { redis: () => (redis.status === 'ready' ? redis.ping() : Promise.reject(new Error(redis.status))) }
        : {}),
    });

    return {
      config,
      logger,
      metrics,
      db,
      dialect,
      redis,
      secrets,
      sandbox,
      tokens,
      configEvents,
      http,
      providers,
      authenticateService: createServiceAuthenticator(db, { configEvents }),
      ctx: { db, dialect, secrets, sandbox, configEvents },
      readiness,
      async close() {
        for (const close of closers.reverse()) {
          try {
            await close();
          } catch (err) {
            logger.warn({ err: summarizeError(err, { stack: true }) }, 'error while shutting down');
          }
        }
      },
    };
  } catch (err) {
    for (const close of closers.reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => {});
    throw err;
  }
}

async function checkDatabase(db: Db, config: Readonly<Config>, migrate: boolean): Promise<void> {
  if (migrate) await migrateDatabase(db, config);
  else await usingDatabase(config, () => db.selectFrom('tenants').select('id').limit(1).execute());
}

/** Applies pending migrations; a failure is a StartupError naming the database setting. */
export function migrateDatabase(db: Db, config: Readonly<Config>): Promise<string[]> {
  return usingDatabase(config, () => migrateToLatest(db));
}

async function usingDatabase<T>(config: Readonly<Config>, use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } catch (err) {
    const where = config.databaseUrl
      ? `DATABASE_URL (${redactUrl(config.databaseUrl)})`
      : `SQLite in ${config.dataDir}`;
    const e = err as NodeJS.ErrnoException & { sqlMessage?: string };
    const reason = e.code ?? e.sqlMessage ?? e.message;
    throw new StartupError(`${where}: cannot use the database: ${reason}`);
  }
}

const REDIS_STARTUP_TIMEOUT_MS = 5_000;

async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
  });
  redis.on('error', () => {
    // Reconnects on its own; readiness and the fallbacks report the outage.
  });
  // connectTimeout covers the TCP connect only: a server that accepts and never answers would
  // otherwise hold start-up forever, silently.
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer to PING within ${REDIS_STARTUP_TIMEOUT_MS / 1000} s`)),
      REDIS_STARTUP_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([redis.connect().then(() => redis.ping()), silence]);
  } catch (err) {
    redis.disconnect();
    throw new StartupError(`REDIS_URL (${redactUrl(url)}): cannot connect: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return redis;
}

/** Hides a password in a connection URL before it is printed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
