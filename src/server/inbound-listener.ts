/**
 * The inbound listener (default :8082): partner routes, verified, limited, forwarded and audited
 * by `inbound/pipeline.ts`. Mounts nothing of the outbound proxy or the admin API. Redis backs the
 * nonce store and the limiter when it is configured, in-process twins otherwise.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAdmission } from '../inbound/admission.ts';
import { createAuditWriter, SpoolDirError } from '../inbound/audit/index.ts';
import { startAuditRetention } from '../inbound/audit/retention.ts';
import { createClientAddressResolver } from '../inbound/client-address.ts';
import { createPartnerKeyCache } from '../inbound/key-cache.ts';
import {
  createMemoryNonceStore,
  createRedisNonceStore,
  nonceTtlSeconds,
} from '../inbound/nonce/nonce-store.ts';
import { handleInboundCall, type InboundDeps } from '../inbound/pipeline.ts';
import {
  createMemoryRateLimiter,
  createRedisRateLimiter,
  createResilientRateLimiter,
  type RateLimiter,
} from '../inbound/ratelimit/index.ts';
import { createReplayGuard } from '../inbound/replay-guard.ts';
import { createRouteCache } from '../inbound/routes.ts';
import { partnerKeyChangeTopic } from '../services/partner-keys.ts';
import { ROUTES_CHANGE_TOPIC } from '../services/routes.ts';
import { createRedisOutageGuard } from '../storage/redis-outage.ts';
import type { Services } from './create-services.ts';
import { handleHealth } from './http.ts';
import { StartupError } from './startup-error.ts';

export interface InboundHandlerOptions {
  /** How long a cached partner key / route table counts as fresh; default 5 s. */
  cacheTtlMs?: number;
}

export async function createInboundHandler(services: Services, opts: InboundHandlerOptions = {}) {
  const { config, logger } = services;
  // First: a spool directory it cannot use stops start-up before anything else is opened.
  const audit = openAuditWriter(services);
  // The hot path's own connection: with auto-pipelining, the nonce and limiter commands of all
  // requests in flight share writes and reads instead of costing a round of syscalls each.
  const redis = services.redis?.duplicate({ enableAutoPipelining: true });
  redis?.on('error', () => {
    // Reconnects on its own; the nonce store and the limiter fall back meanwhile.
  });
  const keys = createPartnerKeyCache({
    db: services.db,
    secrets: services.secrets,
    ttlMs: opts.cacheTtlMs,
    logger,
  });
  const routes = createRouteCache({ db: services.db, ttlMs: opts.cacheTtlMs, logger });
  const keyTopicPrefix = partnerKeyChangeTopic('');
  const unsubscribe = services.configEvents.subscribe((tenantId, topic) => {
    if (topic === ROUTES_CHANGE_TOPIC) routes.invalidate(tenantId);
    else if (topic.startsWith(keyTopicPrefix)) keys.invalidate(topic.slice(keyTopicPrefix.length));
  });

  const local = createMemoryRateLimiter();
  const nonceTtl = nonceTtlSeconds(config.inbound.clockSkewSeconds);
  // One view of Redis for the nonce store and the limiter: they share the connection, and a call
  // that finds Redis down sends both of its steps to their fallbacks without waiting twice.
  const outage = createRedisOutageGuard({
    what: 'nonce store and rate limiter',
    whileDown: 'nonces are checked in process and keys fall back to their onRedisDown policy',
    timeoutMs: config.redisTimeoutMs,
    retryAfterMs: 1000,
    logger,
  });
  const redisLimiter = redis ? createRedisRateLimiter(redis) : undefined;
  const limiter: RateLimiter = redisLimiter
    ? createResilientRateLimiter({ redis: redisLimiter, local, outage })
    : local;
  const replay = createReplayGuard({
    redis: redis ? createRedisNonceStore(redis) : undefined,
    local: createMemoryNonceStore(),
    ttlSeconds: nonceTtl,
    outage,
  });
  const admission = createAdmission({
    replay,
    limiter,
    redis: redisLimiter ? { limiter: redisLimiter, outage, nonceTtlSeconds: nonceTtl } : undefined,
  });
  services.metrics.watchAudit(() => audit.stats());
  services.metrics.watchUnreadablePartnerSecrets(() => keys.unreadableCounts());
  const retention =
    config.inbound.auditRetentionDays > 0
      ? startAuditRetention({ db: services.db, retentionDays: config.inbound.auditRetentionDays, logger })
      : undefined;

  const deps: InboundDeps = {
    keys,
    routes,
    admission,
    limiter,
    http: services.http,
    audit,
    logger,
    metrics: services.metrics,
    settings: {
      clockSkewSeconds: config.inbound.clockSkewSeconds,
      maxBodyBytes: config.inbound.maxBodyBytes,
      auditBodyCapBytes: config.inbound.auditBodyCapBytes,
      clientAddress: createClientAddressResolver(config.inbound.trustedProxies),
      accessLog: config.accessLog,
    },
  };

  return {
    handler: async (req: IncomingMessage, res: ServerResponse) => {
      if (await handleHealth(req, res, services.readiness)) return;
      await handleInboundCall(deps, req, res);
    },
    /** Called after the listener stopped taking requests: every audit row reaches MySQL or the spool. */
    close: async () => {
      unsubscribe();
      await retention?.stop();
      await audit.close();
      await redis?.quit().catch(() => redis.disconnect());
    },
    /** For tests and the benchmark. */
    audit,
  };
}

function openAuditWriter({ config, db, logger }: Services) {
  try {
    return createAuditWriter({
      db,
      spoolDir: config.inbound.spoolDir,
      spoolMaxBytes: config.inbound.auditSpoolMaxBytes,
      logger,
    });
  } catch (err) {
    if (err instanceof SpoolDirError) {
      throw new StartupError(`KEYGATE_AUDIT_SPOOL_DIR (${config.inbound.spoolDir}): ${err.message}`);
    }
    throw err;
  }
}
