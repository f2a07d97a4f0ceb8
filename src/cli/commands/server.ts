import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, type ListenerRole, loadConfig, ROLES } from '../../config.ts';
import { startSeedProvider } from '../../dev/seed-provider.ts';
import { createLogger } from '../../logger.ts';
import { createServices, migrateDatabase, type Services } from '../../server/create-services.ts';
import { type RunningServer, startServer } from '../../server/serve.ts';
import { applyProviderVersion, getProviderVersion } from '../../services/providers.ts';
import { setSecret } from '../../services/secrets.ts';
import { createTenant, findTenant } from '../../services/tenants.ts';
import { createAdminToken, createServiceToken } from '../../services/tokens.ts';
import { createDatabase } from '../../storage/db.ts';
import { type Command, type CommandIo, output, UsageError } from '../args.ts';
import { CLI_ACTOR } from '../context.ts';
import { readProviderFile } from './providers.ts';

const SEED_PROVIDER_FILE = path.resolve(import.meta.dirname, '../../../scripts-examples/seed/provider.json');

export function parseRoles(text: string | undefined): ListenerRole[] {
  // Only a missing flag means every listener: an empty one (an unset variable in `--roles "$ROLES"`)
  // must not quietly add the proxy and the admin API to an inbound node.
  if (text === undefined) return [...ROLES];
  if (text.trim() === '') throw new UsageError(`--roles is empty; roles are ${ROLES.join(', ')}`);
  const roles = text.split(',').map((r) => r.trim());
  for (const r of roles) {
    if (!ROLES.includes(r as ListenerRole))
      throw new UsageError(`unknown role ${r}; roles are ${ROLES.join(', ')}`);
  }
  return [...new Set(roles)] as ListenerRole[];
}

/** Runs until SIGINT / SIGTERM, then shuts down gracefully. */
async function runUntilSignal(
  io: CommandIo,
  server: RunningServer,
  extraClose?: () => Promise<void>,
): Promise<number> {
  let firstAt: number | undefined;
  const stopped = new Promise<void>((resolve) => {
    // Installed for good: a second signal must not fall through to Node's default (exit at once,
    // dropping the audit rows still queued), it cuts the wait for in-flight requests short instead.
    const onSignal = () => {
      if (firstAt === undefined) {
        firstAt = performance.now();
        resolve();
        return;
      }
      // One Ctrl-C (or a systemd stop) reaches both bin/keygate.js, which passes it on, and this
      // process in its process group: a copy within a second is the same signal, not a second one.
      if (performance.now() - firstAt < 1_000) return;
      io.stderr.write(
        'keygate: signal again: closing open connections now; queued audit rows are still written (SIGKILL stops at once)\n',
      );
      server.hurry();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await stopped;
  io.stderr.write('keygate: shutting down\n');
  await server.close();
  await extraClose?.();
  return 0;
}

export const serverCommands: Command[] = [
  {
    name: 'serve',
    usage: 'serve [--roles outbound,admin,inbound]',
    summary: 'Runs the production server from the environment / KEYGATE_CONFIG.',
    options: { roles: { type: 'string' } },
    async run(args, io) {
      const roles = parseRoles(args.values.roles as string | undefined);
      const config = loadConfig(io.env);
      const services = await createServices(config);
      const server = await startServer(services, roles).catch(async (err: unknown) => {
        await services.close();
        throw err;
      });
      return runUntilSignal(io, server);
    },
  },
  {
    name: 'migrate',
    usage: 'migrate [--json]',
    summary:
      'Applies pending database migrations (start-up does this too unless KEYGATE_MIGRATE_ON_START=false).',
    async run(args, io) {
      const config = loadConfig(io.env);
      const { db } = createDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      try {
        const applied = await migrateDatabase(db, config);
        output(io, args, { applied }, [
          applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date',
        ]);
      } finally {
        await db.destroy();
      }
      return 0;
    },
  },
  {
    name: 'dev',
    usage: 'dev [--json]',
    summary:
      'What `npm start` runs: embedded defaults in ./.keygate, all three listeners, a bundled demo provider, a demo tenant, and a ready curl.',
    async run(args, io) {
      const env: NodeJS.ProcessEnv = { KEYGATE_HOST: '127.0.0.1', ...io.env };
      const config = loadConfig(env);
      const demoPort = Number(env.KEYGATE_DEMO_PORT ?? 8090);
      if (!Number.isInteger(demoPort) || demoPort < 0 || demoPort > 65535) {
        throw new ConfigError('KEYGATE_DEMO_PORT: must be a port number');
      }
      const demoSecrets = loadDemoSecrets(config.dataDir);
      const provider = await startSeedProvider(demoSecrets, demoPort).catch((err: NodeJS.ErrnoException) => {
        throw new ConfigError(`KEYGATE_DEMO_PORT: cannot listen on ${demoPort} (${err.code ?? err.message})`);
      });
      const services = await createServices(config, { logger: createLogger(config.logLevel, io.stderr) });
      let server: RunningServer;
      let tokens: { service: string; admin: string };
      try {
        tokens = await setUpDemoTenant(services, provider.url, demoSecrets);
        server = await startServer(services, ROLES);
      } catch (err) {
        await services.close();
        await provider.close();
        throw err;
      }
      const outbound = `http://127.0.0.1:${server.ports.outbound}`;
      const curl = [
        `curl -s ${outbound}/v1/proxy/${DEMO_PROVIDER}/api/echo \\`,
        `  -H 'Authorization: Bearer ${tokens.service}' -H 'Content-Type: application/json' \\`,
        `  -d '{"data":"hello from keygate","timestamp":'$(date +%s)'}'`,
      ];
      // --json: one object (URLs, tokens, the curl) for scripts that start keygate dev.
      output(
        io,
        args,
        {
          outbound,
          admin: `http://127.0.0.1:${server.ports.admin}`,
          inbound: `http://127.0.0.1:${server.ports.inbound}`,
          demoProvider: provider.url,
          dataDir: config.dataDir,
          serviceToken: tokens.service,
          adminToken: tokens.admin,
          curl: curl.join('\n'),
        },
        [
          '',
          'keygate dev is running (embedded SQLite, in-process token cache and rate limiter, local master key).',
          `  outbound proxy  ${outbound}`,
          `  admin API       http://127.0.0.1:${server.ports.admin}`,
          `  inbound API     http://127.0.0.1:${server.ports.inbound}`,
          `  demo provider   ${provider.url}  (speaks the seed scheme)`,
          `  data            ${config.dataDir}`,
          '',
          `service token (tenant demo):  ${tokens.service}`,
          `admin token (gateway_admin):  ${tokens.admin}`,
          '',
          'A signed round trip through the demo provider (keygate fetches a token, encrypts, signs, and decrypts the answer):',
          '',
          ...curl.map((line) => `  ${line}`),
          '',
          'Press Ctrl+C to stop.',
        ],
      );
      return runUntilSignal(io, server, () => provider.close());
    },
  },
];

export const DEMO_TENANT = 'demo';
export const DEMO_PROVIDER = 'demo-pay';

interface DemoSecrets {
  appKey: string;
  aesKey: string;
  aesIv: string;
}

/** The demo provider's credentials persist in the data dir, so restarts keep working. */
function loadDemoSecrets(dataDir: string): DemoSecrets {
  const file = path.join(dataDir, 'demo-provider.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DemoSecrets;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secrets = {
    appKey: `demo-${randomBytes(4).toString('hex')}`,
    aesKey: randomBytes(8).toString('hex'),
    aesIv: randomBytes(8).toString('hex'),
  };
  writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  return secrets;
}

/** Idempotent: tenant, provider version (only when it changed) and secrets; fresh tokens per run. */
export async function setUpDemoTenant(
  services: Services,
  providerUrl: string,
  demo: DemoSecrets,
): Promise<{ service: string; admin: string }> {
  const { ctx } = services;
  if (!(await findTenant(ctx.db, DEMO_TENANT))) await createTenant(ctx, CLI_ACTOR, { name: DEMO_TENANT });
  const config: Record<string, unknown> = {
    ...readProviderFile(SEED_PROVIDER_FILE),
    name: DEMO_PROVIDER,
    prefixUrl: providerUrl,
    tokenUrl: `${providerUrl}/oauth/token`,
  };
  const active = await getProviderVersion(ctx, CLI_ACTOR, {
    tenant: DEMO_TENANT,
    provider: DEMO_PROVIDER,
  }).catch(() => undefined);
  const unchanged =
    active &&
    active.config.prefixUrl === config.prefixUrl &&
    active.config.request === config.request &&
    active.config.response === config.response;
  if (!unchanged) await applyProviderVersion(ctx, CLI_ACTOR, { tenant: DEMO_TENANT, config });
  const existing = new Set(
    (await ctx.secrets.list((await findTenant(ctx.db, DEMO_TENANT))!.id, DEMO_PROVIDER)).map((s) => s.name),
  );
  const wanted: Array<[string, string, boolean]> = [
    ['AppKey', demo.appKey, false],
    ['AesKey', demo.aesKey, true],
    ['AesIV', demo.aesIv, true],
  ];
  for (const [name, value, sensitive] of wanted) {
    if (!existing.has(name))
      await setSecret(ctx, CLI_ACTOR, {
        tenant: DEMO_TENANT,
        provider: DEMO_PROVIDER,
        name,
        value,
        sensitive,
      });
  }
  const service = await createServiceToken(ctx, CLI_ACTOR, {
    tenant: DEMO_TENANT,
    name: `dev-${Date.now()}`,
  });
  const admin = await createAdminToken(ctx, CLI_ACTOR, {
    role: 'gateway_admin',
    name: `dev-${Date.now()}`,
    expiresInSeconds: 86_400,
  });
  return { service: service.token, admin: admin.token };
}
