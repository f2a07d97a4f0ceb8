/**
 * Starts a real keygate in-process (all listeners on port 0) against a fresh database, and
 * offers the set-up steps a test needs, through the same services the CLI uses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_ACTOR } from '../../src/cli/context.ts';
import { type ListenerRole, loadConfig, ROLES } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createServices, type Services } from '../../src/server/create-services.ts';
import { type RunningServer, startServer } from '../../src/server/serve.ts';
import { applyProviderVersion } from '../../src/services/providers.ts';
import { setSecret } from '../../src/services/secrets.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { createServiceToken } from '../../src/services/tokens.ts';
import type { DbDialect } from '../../src/storage/db.ts';
import { createTestDatabase, REDIS_TEST_URL, type TestDatabase } from './db.ts';

export interface TestGateway {
  services: Services;
  server: RunningServer;
  database: TestDatabase;
  outboundUrl: string;
  adminUrl: string;
  inboundUrl: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  dialect?: DbDialect;
  redis?: boolean;
  roles?: readonly ListenerRole[];
  env?: Record<string, string>;
  /** Reuse an existing database (a second node of the same cluster). */
  database?: TestDatabase;
  /** Where the JSON log lines go (debug level); silent when not given. */
  logTo?: NodeJS.WritableStream;
}

export async function startTestGateway(opts: GatewayOptions = {}): Promise<TestGateway> {
  const database = opts.database ?? (await createTestDatabase(opts.dialect ?? 'sqlite'));
  const dataDir = opts.database ? opts.database.dataDir : mkdtempSync(path.join(os.tmpdir(), 'keygate-gw-'));
  // Each node its own audit spool, as in production (a spool directory takes one process): nodes
  // of one cluster share the database and so, on SQLite, the data directory.
  const spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-gw-spool-'));
  const env: Record<string, string> = {
    KEYGATE_DATA_DIR: database.dialect === 'sqlite' ? database.dataDir : dataDir,
    KEYGATE_HOST: '127.0.0.1',
    KEYGATE_OUTBOUND_PORT: '0',
    KEYGATE_ADMIN_PORT: '0',
    KEYGATE_INBOUND_PORT: '0',
    KEYGATE_LOG_LEVEL: 'silent',
    KEYGATE_SHUTDOWN_GRACE_MS: '2000',
    KEYGATE_AUDIT_SPOOL_DIR: spoolDir,
    ...(database.databaseUrl ? { DATABASE_URL: database.databaseUrl } : {}),
    ...(opts.redis ? { REDIS_URL: REDIS_TEST_URL } : {}),
    ...opts.env,
  };
  let services: Services | undefined;
  let server: RunningServer;
  try {
    const config = loadConfig(env);
    const logger = opts.logTo ? createLogger('debug', opts.logTo) : createLogger('silent');
    services = await createServices(config, { logger });
    server = await startServer(services, opts.roles ?? ROLES);
  } catch (err) {
    // Nothing is returned to close: release what was made here (startServer leaves the services open).
    await services?.close().catch(() => {});
    rmSync(spoolDir, { recursive: true, force: true });
    if (!opts.database) {
      await database.drop().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    }
    throw err;
  }
  const url = (role: ListenerRole) => (server.ports[role] ? `http://127.0.0.1:${server.ports[role]}` : '');
  return {
    services,
    server,
    database,
    outboundUrl: url('outbound'),
    adminUrl: url('admin'),
    inboundUrl: url('inbound'),
    env,
    async close() {
      await server.close();
      rmSync(spoolDir, { recursive: true, force: true });
      if (!opts.database) {
        await database.drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

let counter = 0;

/** A tenant with one provider (applied and active), its secrets, and a service token. */
export async function setUpProvider(
  gw: TestGateway,
  config: Record<string, unknown>,
  secrets: Record<string, string> = {},
  opts: { tenant?: string; notSensitive?: string[] } = {},
): Promise<{ tenantId: string; tenant: string; serviceToken: string }> {
  const { ctx } = gw.services;
  const tenantName = opts.tenant ?? `t${process.pid}x${++counter}x${Date.now() % 100000}`;
  const tenant = await createTenant(ctx, CLI_ACTOR, { name: tenantName }).catch(async () => {
    const { findTenant } = await import('../../src/services/tenants.ts');
    return (await findTenant(ctx.db, tenantName))!;
  });
  await applyProviderVersion(ctx, CLI_ACTOR, { tenant: tenant.id, config });
  for (const [name, value] of Object.entries(secrets)) {
    await setSecret(ctx, CLI_ACTOR, {
      tenant: tenant.id,
      provider: String(config.name),
      name,
      value,
      sensitive: opts.notSensitive?.includes(name) ? false : undefined,
    });
  }
  const token = await createServiceToken(ctx, CLI_ACTOR, { tenant: tenant.id, name: 'test' });
  return { tenantId: tenant.id, tenant: tenant.name, serviceToken: token.token };
}
