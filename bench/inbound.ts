/**
 * Inbound benchmark: the full keygate chain (KG1-HMAC-SHA256 verification, Redis nonce store, Redis
 * rate limiter with a generous limit, routing, undici forwarding, batched MySQL audit) vs a raw
 * node:http + undici passthrough, in the same run, in front of the same upstream. Every request is
 * signed with its own nonce as it is sent (both targets get the same signed requests, so the load
 * generator does the same work for each).
 *
 * Run directly: node --no-node-snapshot bench/inbound.ts [durationSec] [connections]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { signRequest } from '../src/client/index.ts';
import { loadConfig } from '../src/config.ts';
import { canonicalString, sha256Hex, signCanonicalString } from '../src/inbound/signature/canonical.ts';
import { createLogger } from '../src/logger.ts';
import { createServices } from '../src/server/create-services.ts';
import { createPartnerKey } from '../src/services/partner-keys.ts';
import { addRoute } from '../src/services/routes.ts';
import { createTenant } from '../src/services/tenants.ts';
import { createTestDatabase, REDIS_TEST_URL } from '../test/helpers/db.ts';
import { type KeygateChild, startInboundChild } from '../test/helpers/inbound.ts';
import { type AbOptions, type AbResult, runAb } from './ab.ts';
import {
  type Capacity,
  type CpuFigures,
  capacityOf,
  cpuText,
  DEFAULT_CONNECTION_LEVELS,
  DEFAULT_ROUNDS,
  type LevelRps,
  measureCpu,
  pidByName,
  printCapacity,
  startChild,
  stop,
  summarizeLevels,
  WARMUP_SEC,
} from './load.ts';

export interface LatencyFigures extends Partial<CpuFigures> {
  rps: number;
  p50: number;
  p99: number;
}

/** The rounds at one concurrency level. */
export interface InboundLevel extends LevelRps {
  keygate: LatencyFigures;
  passthrough: LatencyFigures;
  /** keygate / passthrough RPS of the round shown (the median one). */
  ratio: number;
  /** Every round's ratio, in the order they ran. */
  ratios: number[];
}

export interface InboundBench {
  levels: InboundLevel[];
  capacity: Capacity;
}

interface PartnerKey {
  keyId: string;
  secret: string;
}

const here = import.meta.dirname;
const PATH = '/api/orders';
const BODY = JSON.stringify({ order: 'A-1042', amount: 1299, currency: 'EUR', note: 'benchmark payload' });

/** The upstream, a keygate with a partner key and route, the passthrough, and what to measure. */
interface InboundSetup {
  keygate: KeygateChild;
  passthrough: { url: string; pid: number | undefined };
  key: PartnerKey;
  /** Further processes whose CPU per request is shown. */
  parts: Record<string, number | undefined>;
  /** Starts another keygate on the same database and Redis, with `env` on top (and `main`). */
  startKeygate(env: Record<string, string>, main?: string): Promise<KeygateChild>;
  close(): Promise<void>;
}

async function setUpInbound(): Promise<InboundSetup> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-bench-in-'));
  const database = await createTestDatabase('mysql');
  const stops: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const stopIt of stops.reverse()) await stopIt().catch(() => {});
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const upstream = await startChild(path.join(here, 'fixtures/echo-upstream.ts'), []);
    stops.push(() => stop(upstream.child));
    const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;

    // Tenant, key and route through the services the CLI uses; the key allows far more than we send.
    const env = {
      DATABASE_URL: database.databaseUrl!,
      REDIS_URL: process.env.REDIS_URL ?? REDIS_TEST_URL,
      KEYGATE_DATA_DIR: dataDir,
      KEYGATE_MIGRATE_ON_START: 'false',
    };
    const services = await createServices(loadConfig(env), { logger: createLogger('silent') });
    let key: PartnerKey;
    try {
      const tenant = await createTenant(services.ctx, CLI_ACTOR, { name: `bench${Date.now() % 1_000_000}` });
      const created = await createPartnerKey(services.ctx, CLI_ACTOR, {
        tenant: tenant.id,
        name: 'bench',
        rate: 1_000_000,
        burst: 1_000_000,
      });
      key = { keyId: created.keyId, secret: created.secret };
      await addRoute(services.ctx, CLI_ACTOR, { tenant: tenant.id, prefix: '/api', upstream: upstreamUrl });
    } finally {
      await services.close();
    }

    const startKeygate = async (extraEnv: Record<string, string>, main?: string) => {
      // Access log off, as gateway benchmarks run (its cost: README, "Measured and not adopted").
      // Each process its own audit spool: a spool directory takes one process (A and B run at once).
      const spoolDir = mkdtempSync(path.join(dataDir, 'spool-'));
      const keygate = await startInboundChild(
        {
          ...env,
          KEYGATE_AUDIT_SPOOL_DIR: spoolDir,
          KEYGATE_LOG_LEVEL: 'info',
          KEYGATE_ACCESS_LOG: 'false',
          ...extraEnv,
        },
        main,
      );
      stops.push(() => keygate.stop());
      // The SDK's signature passes, and so does the load generator's.
      for (const headers of [sdkHeaders(key, keygate.url), fastSigner(key)()]) {
        const check = await fetch(keygate.url + PATH, { method: 'POST', headers, body: BODY });
        if (check.status !== 200)
          throw new Error(`keygate warm-up failed: ${check.status} ${await check.text()}`);
      }
      return keygate;
    };
    const keygate = await startKeygate({});
    const passthrough = await startChild(path.join(here, 'fixtures/passthrough.ts'), [upstreamUrl]);
    stops.push(() => stop(passthrough.child));
    return {
      keygate,
      passthrough: { url: `http://127.0.0.1:${passthrough.info.port}`, pid: passthrough.child.pid },
      key,
      parts: {
        upstream: upstream.child.pid,
        redis: pidByName('redis-server'),
        mariadb: pidByName('mariadbd'),
      },
      startKeygate,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function benchInbound({
  durationSec = 10,
  connectionLevels = DEFAULT_CONNECTION_LEVELS,
  rounds = DEFAULT_ROUNDS,
}: {
  durationSec?: number;
  connectionLevels?: readonly number[];
  rounds?: number;
} = {}): Promise<InboundBench> {
  const setup = await setUpInbound();
  try {
    const { keygate, passthrough, key, parts } = setup;
    // Each round loads both targets at every level in turn, so that the machine's drift over the
    // run (a third of the rate within minutes) hits every level and target alike; the round with
    // the median ratio of a level is the one shown.
    type Round = { keygate: LatencyFigures; passthrough: LatencyFigures; ratio: number };
    const byLevel: Round[][] = connectionLevels.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, connections] of connectionLevels.entries()) {
        const keygateFigures = await measureCpu(
          keygate.pid,
          durationSec,
          () => drive(keygate.url, key, durationSec, connections),
          parts,
        );
        const passthroughFigures = await measureCpu(
          passthrough.pid,
          durationSec,
          () => drive(passthrough.url, key, durationSec, connections),
          parts,
        );
        byLevel[i]!.push({
          keygate: keygateFigures,
          passthrough: passthroughFigures,
          ratio: keygateFigures.rps / passthroughFigures.rps,
        });
      }
    }
    const levels: InboundLevel[] = summarizeLevels(connectionLevels, byLevel);
    return { levels, capacity: capacityOf(levels) };
  } finally {
    await setup.close();
  }
}

/** Two inbound keygates side by side (see ab.ts); A as built, B as `opts` says. */
export async function benchInboundAb(opts: AbOptions): Promise<AbResult<LatencyFigures>> {
  const { windowSec = 4, connections = 32 } = opts;
  const setup = await setUpInbound();
  try {
    const b = await setup.startKeygate(opts.env, opts.main);
    return await runAb(opts, setup.keygate, b, (target) =>
      measureCpu(
        target.pid,
        windowSec,
        () => drive(target.url, setup.key, windowSec, connections),
        setup.parts,
      ),
    );
  } finally {
    await setup.close();
  }
}

function sdkHeaders(key: PartnerKey, baseUrl: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    ...signRequest({ keyId: key.keyId, secret: key.secret, method: 'POST', url: baseUrl + PATH, body: BODY }),
  };
}

/**
 * The SDK's signature with its constant part (the body hash) computed once and a counter for the
 * nonce, so the load generator spends its CPU sending rather than signing.
 */
function fastSigner(key: PartnerKey): () => Record<string, string> {
  const bodySha256Hex = sha256Hex(BODY);
  const run = randomBytes(6).toString('hex');
  let counter = 0;
  return () => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = `${run}-${(counter++).toString(36).padStart(8, '0')}`;
    const canonical = canonicalString({
      method: 'POST',
      path: PATH,
      rawQuery: '',
      keyId: key.keyId,
      timestamp,
      nonce,
      bodySha256Hex,
    });
    return {
      'content-type': 'application/json',
      'X-Api-Key': key.keyId,
      'X-Timestamp': timestamp,
      'X-Nonce': nonce,
      'X-Signature': signCanonicalString(key.secret, canonical),
    };
  };
}

/** A warm-up, then the measured run; each request signed afresh (a new nonce) as it is sent. */
async function drive(
  baseUrl: string,
  key: PartnerKey,
  durationSec: number,
  connections: number,
): Promise<LatencyFigures> {
  const nextHeaders = fastSigner(key);
  const run = (duration: number) =>
    autocannon({
      url: baseUrl,
      connections,
      duration,
      requests: [
        {
          method: 'POST',
          path: PATH,
          body: BODY,
          setupRequest: (req: { headers?: Record<string, string> }) => {
            req.headers = nextHeaders();
            return req;
          },
        },
      ],
    });
  await run(WARMUP_SEC);
  const r = await run(durationSec);
  if (r.non2xx || r.errors || r.timeouts) {
    throw new Error(`${baseUrl}: ${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.timeouts} timeouts`);
  }
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99 };
}

export function printInbound(r: InboundBench): void {
  const line = (f: LatencyFigures) =>
    `${String(f.rps).padStart(7)} req/s  p50 ${f.p50.toFixed(2).padStart(6)} ms  p99 ${f.p99.toFixed(2).padStart(6)} ms${cpuText(f)}`;
  console.log('inbound (HMAC verify, Redis nonce + limiter, route, forward, async MySQL audit):');
  for (const level of r.levels) {
    console.log(` at ${level.connections} connections:`);
    console.log(`  node:http+undici pass  ${line(level.passthrough)}`);
    console.log(`  keygate                ${line(level.keygate)}`);
    console.log(
      `  keygate / passthrough  ${level.ratio.toFixed(2)}x  (rounds ${level.ratios.map((x) => x.toFixed(2)).join(', ')})`,
    );
  }
  printCapacity(r.capacity, 0.6);
}

if (import.meta.main) {
  const [durationSec, connections] = process.argv.slice(2).map(Number);
  printInbound(
    await benchInbound({
      durationSec: durationSec || undefined,
      connectionLevels: connections ? [connections] : undefined,
    }),
  );
}
