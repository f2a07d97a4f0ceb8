/**
 * The one configuration loader: environment variables (12-factor), optionally merged over a JSON
 * file named by KEYGATE_CONFIG. Parsed once with zod at start-up and frozen; a bad value stops the
 * process with a message naming the variable.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseTrustedProxies } from './inbound/client-address.ts';

/**
 * A whole number written in decimal digits, within [min, max]. `z.coerce.number()` alone would read
 * ' ' as 0 and '0x1F' as 31: a blank or hexadecimal setting is a mistake to report, not a value.
 */
function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .regex(/^\d+$/, 'must be a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().min(min).max(max));
}
const port = wholeNumber(0, 65535);
const positiveInt = wholeNumber(1);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const databaseUrl = z.string().refine((v) => {
  try {
    return new URL(v).protocol === 'mysql:';
  } catch {
    return false;
  }
}, 'must be a mysql://user:password@host:port/database URL (unset it for embedded SQLite)');

const redisUrl = z.string().refine((v) => {
  try {
    return ['redis:', 'rediss:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}, 'must be a redis:// or rediss:// URL (unset it for the in-process store)');

const httpUrl = z.string().refine((v) => {
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}, 'must be an http(s) URL');

const trustedProxies = z.string().superRefine((v, ctx) => {
  try {
    parseTrustedProxies(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const ROLES = ['outbound', 'admin', 'inbound'] as const;
export type ListenerRole = (typeof ROLES)[number];

/** Environment variable name -> schema. The names are the public configuration reference. */
const envSchema = z.object({
  DATABASE_URL: databaseUrl.optional(),
  REDIS_URL: redisUrl.optional(),
  KMS_PROVIDER: z.enum(['local', 'aws-kms']).default('local'),
  KMS_KEY_ID: z.string().min(1).optional(),
  AWS_REGION: z.string().min(1).optional(),
  AWS_ENDPOINT_URL_KMS: httpUrl.optional(),
  KEYGATE_DATA_DIR: z.string().min(1).default('.keygate'),
  KEYGATE_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  KEYGATE_ACCESS_LOG: bool.default(true),
  KEYGATE_HOST: z.string().min(1).optional(),
  KEYGATE_ADMIN_HOST: z.string().min(1).optional(),
  KEYGATE_OUTBOUND_PORT: port.default(8080),
  KEYGATE_ADMIN_PORT: port.default(8081),
  KEYGATE_INBOUND_PORT: port.default(8082),
  KEYGATE_STATUS_PORT: port.optional(),
  KEYGATE_STATUS_HOST: z.string().min(1).optional(),
  KEYGATE_MIGRATE_ON_START: bool.default(true),
  KEYGATE_SCRIPT_CPU_MS: positiveInt.default(50),
  KEYGATE_SCRIPT_MEMORY_MB: positiveInt.default(32),
  KEYGATE_TIMER_SLACK_US: wholeNumber(0, 100_000).default(1000),
  KEYGATE_DATA_KEY_TTL_S: positiveInt.default(300),
  KEYGATE_CONFIG_POLL_MS: positiveInt.default(500),
  KEYGATE_INBOUND_CLOCK_SKEW_S: positiveInt.default(300),
  KEYGATE_INBOUND_MAX_BODY_BYTES: positiveInt.default(1024 * 1024),
  KEYGATE_AUDIT_BODY_CAP_BYTES: positiveInt.default(64 * 1024),
  KEYGATE_AUDIT_SPOOL_DIR: z.string().min(1).optional(),
  KEYGATE_AUDIT_RETENTION_DAYS: wholeNumber(0, 36_500).default(0),
  KEYGATE_AUDIT_SPOOL_MAX_BYTES: wholeNumber(0).default(1024 * 1024 * 1024),
  KEYGATE_TRUSTED_PROXIES: trustedProxies.default(''),
  KEYGATE_SHUTDOWN_GRACE_MS: positiveInt.default(10_000),
  KEYGATE_SHUTDOWN_DELAY_MS: wholeNumber(0, 600_000).default(0),
  KEYGATE_MAX_UPSTREAM_RESPONSE_BYTES: positiveInt.default(32 * 1024 * 1024),
  KEYGATE_REDIS_TIMEOUT_MS: positiveInt.default(1000),
});

export type RawEnv = z.infer<typeof envSchema>;

export interface Config {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  kms:
    | { provider: 'local'; masterKeyFile: string }
    | { provider: 'aws-kms'; keyId: string; region: string; endpoint: string | undefined };
  dataKeyTtlMs: number;
  dataDir: string;
  logLevel: RawEnv['KEYGATE_LOG_LEVEL'];
  /** One info line per request on every listener (5xx answers are logged at warn either way). */
  accessLog: boolean;
  /** Listen address of the outbound and inbound listeners. */
  host: string;
  /** Listen address of the admin listener: loopback unless KEYGATE_ADMIN_HOST says otherwise. */
  adminHost: string;
  ports: Record<ListenerRole, number>;
  /** The optional status listener (/metrics, /healthz, /readyz of this process). */
  status: { host: string; port: number } | undefined;
  migrateOnStart: boolean;
  script: { cpuMs: number; memoryMb: number };
  /** Timer slack for the threads that run scripts (see sandbox/timer-slack.ts); 0 = OS default. */
  timerSlackUs: number;
  configPollMs: number;
  inbound: {
    clockSkewSeconds: number;
    maxBodyBytes: number;
    auditBodyCapBytes: number;
    spoolDir: string;
    /** Spool size at which inbound calls are refused (they could not be audited); 0: no limit. */
    auditSpoolMaxBytes: number;
    /** Audit rows older than this many days are deleted; 0 keeps every row. */
    auditRetentionDays: number;
    /** Proxies in front of keygate whose X-Forwarded-For is believed (addresses, CIDR blocks). */
    trustedProxies: string[];
  };
  shutdownGraceMs: number;
  /** On a graceful stop, how long /readyz answers 503 before the listeners stop accepting. */
  shutdownDelayMs: number;
  maxUpstreamResponseBytes: number;
  /** How long an inbound request waits for Redis before its key's onRedisDown policy applies. */
  redisTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads KEYGATE_CONFIG (if set) and overlays the environment; throws ConfigError naming the bad key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const merged: Record<string, unknown> = { ...readConfigFile(env.KEYGATE_CONFIG) };
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') merged[key] = value;
  }
  const parsed = envSchema.strict().safeParse(merged);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys'
        ? `KEYGATE_CONFIG: unknown setting${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')} (see the configuration reference)`
        : `${i.path.join('.') || '(config)'}: ${i.message}`,
    );
    throw new ConfigError(`invalid configuration: ${messages.join('; ')}`);
  }
  return Object.freeze(toConfig(parsed.data));
}

function readConfigFile(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `KEYGATE_CONFIG: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    // Files may use JSON numbers and booleans; the schema coerces from strings.
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)]),
    );
  } catch (err) {
    throw new ConfigError(
      `KEYGATE_CONFIG: ${file} is not a JSON object of settings (${(err as Error).message})`,
    );
  }
}

function toConfig(raw: RawEnv): Config {
  const dataDir = path.resolve(raw.KEYGATE_DATA_DIR);
  let kms: Config['kms'];
  if (raw.KMS_PROVIDER === 'aws-kms') {
    if (!raw.KMS_KEY_ID) throw new ConfigError('KMS_KEY_ID: required when KMS_PROVIDER=aws-kms');
    if (!raw.AWS_REGION) throw new ConfigError('AWS_REGION: required when KMS_PROVIDER=aws-kms');
    kms = {
      provider: 'aws-kms',
      keyId: raw.KMS_KEY_ID,
      region: raw.AWS_REGION,
      endpoint: raw.AWS_ENDPOINT_URL_KMS,
    };
  } else {
    kms = { provider: 'local', masterKeyFile: path.join(dataDir, 'master.key') };
  }
  return {
    databaseUrl: raw.DATABASE_URL,
    redisUrl: raw.REDIS_URL,
    kms,
    dataKeyTtlMs: raw.KEYGATE_DATA_KEY_TTL_S * 1000,
    dataDir,
    logLevel: raw.KEYGATE_LOG_LEVEL,
    accessLog: raw.KEYGATE_ACCESS_LOG,
    host: raw.KEYGATE_HOST ?? '0.0.0.0',
    // The admin API and metrics stay on loopback unless an address is given, as Kong's admin_listen.
    // Only their own variables move them: a KEYGATE_HOST=0.0.0.0 set for the proxy in a container
    // must not put the admin API and the unauthenticated metrics on every interface too.
    adminHost: raw.KEYGATE_ADMIN_HOST ?? '127.0.0.1',
    status:
      raw.KEYGATE_STATUS_PORT === undefined
        ? undefined
        : {
            port: raw.KEYGATE_STATUS_PORT,
            host: raw.KEYGATE_STATUS_HOST ?? '127.0.0.1',
          },
    ports: {
      outbound: raw.KEYGATE_OUTBOUND_PORT,
      admin: raw.KEYGATE_ADMIN_PORT,
      inbound: raw.KEYGATE_INBOUND_PORT,
    },
    migrateOnStart: raw.KEYGATE_MIGRATE_ON_START,
    script: { cpuMs: raw.KEYGATE_SCRIPT_CPU_MS, memoryMb: raw.KEYGATE_SCRIPT_MEMORY_MB },
    timerSlackUs: raw.KEYGATE_TIMER_SLACK_US,
    configPollMs: raw.KEYGATE_CONFIG_POLL_MS,
    inbound: {
      clockSkewSeconds: raw.KEYGATE_INBOUND_CLOCK_SKEW_S,
      maxBodyBytes: raw.KEYGATE_INBOUND_MAX_BODY_BYTES,
      auditBodyCapBytes: raw.KEYGATE_AUDIT_BODY_CAP_BYTES,
      spoolDir: raw.KEYGATE_AUDIT_SPOOL_DIR
        ? path.resolve(raw.KEYGATE_AUDIT_SPOOL_DIR)
        : path.join(dataDir, 'spool'),
      auditSpoolMaxBytes: raw.KEYGATE_AUDIT_SPOOL_MAX_BYTES,
      auditRetentionDays: raw.KEYGATE_AUDIT_RETENTION_DAYS,
      trustedProxies: parseTrustedProxies(raw.KEYGATE_TRUSTED_PROXIES),
    },
    shutdownGraceMs: raw.KEYGATE_SHUTDOWN_GRACE_MS,
    shutdownDelayMs: raw.KEYGATE_SHUTDOWN_DELAY_MS,
    maxUpstreamResponseBytes: raw.KEYGATE_MAX_UPSTREAM_RESPONSE_BYTES,
    redisTimeoutMs: raw.KEYGATE_REDIS_TIMEOUT_MS,
  };
}
