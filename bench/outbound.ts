/**
 * Outbound benchmark: the seed script through keygate vs a raw node:http + undici passthrough vs
 * a direct call, in the same run, against the same upstream doing the same work (the passthrough
 * and the direct call send a request keygate signed, so the provider verifies and decrypts alike).
 *
 * Run directly: node --no-node-snapshot bench/outbound.ts [durationSec] [connections]
 */

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readProviderFile } from '../src/cli/commands/providers.ts';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { dryRunScript } from '../src/outbound/dry-run.ts';
import { createServices } from '../src/server/create-services.ts';
import { applyProviderVersion } from '../src/services/providers.ts';
import { setSecret } from '../src/services/secrets.ts';
import { createTenant } from '../src/services/tenants.ts';
import { createServiceToken } from '../src/services/tokens.ts';
import { type AbOptions, type AbResult, runAb } from './ab.ts';
import {
  type Capacity,
  type CpuFigures,
  capacityOf,
  DEFAULT_CONNECTION_LEVELS,
  DEFAULT_ROUNDS,
  fmt,
  type LevelRps,
  type LoadResult,
  measureCpu,
  printCapacity,
  runLoad,
  startChild,
  stop,
  summarizeLevels,
  WARMUP_SEC,
} from './load.ts';

const SECRETS = { AppKey: 'bench-app', AesKey: '0123456789abcdef', AesIV: 'fedcba9876543210' };
const here = import.meta.dirname;

type Measured = LoadResult & CpuFigures;

/** The rounds at one concurrency level. */
export interface OutboundLevel extends LevelRps {
  /** Measured at the first level only (it is there to show the upstream's own rate). */
  direct: LoadResult | null;
  passthrough: Measured;
  keygate: Measured;
  /** keygate / passthrough RPS of the round shown (the median one). */
  ratio: number;
  /** Every round's ratio, in the order they ran. */
  ratios: number[];
}

export interface OutboundBench {
  levels: OutboundLevel[];
  capacity: Capacity;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** One keygate child and how to call it. */
interface KeygateTarget {
  child: ChildProcess;
  req: LoadRequest;
}

type LoadRequest = { url: string; headers: Record<string, string>; body: string };

/** The upstream, a keygate with the seed provider set up, the passthrough, and the three requests. */
interface OutboundSetup {
  upstream: ChildProcess;
  keygate: KeygateTarget;
  passthrough: ChildProcess;
  passthroughReq: LoadRequest;
  directReq: LoadRequest;
  /** Starts another keygate on the same data, with `env` on top (and `main` instead of ours). */
  startKeygate(env: Record<string, string>, main?: string): Promise<KeygateTarget>;
  close(): Promise<void>;
}

const KEYGATE_MAIN = path.join(here, '../src/cli/main.ts');

async function setUpOutbound(): Promise<OutboundSetup> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-bench-'));
  const upstream = await startChild(path.join(here, 'fixtures/seed-upstream.ts'), [
    SECRETS.AppKey,
    SECRETS.AesKey,
    SECRETS.AesIV,
  ]);
  const upstreamUrl = `http://127.0.0.1:${upstream.info.port}`;
  const children = [upstream.child];
  const close = async () => {
    for (const c of children) await stop(c);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // Set up tenant, provider, secrets and a service token with the same services the CLI uses.
    const env = { KEYGATE_DATA_DIR: dataDir, KEYGATE_LOG_LEVEL: 'warn', KEYGATE_HOST: '127.0.0.1' };
    const services = await createServices(loadConfig(env), { logger: createLogger('silent') });
    let serviceToken: string;
    let signed: { url: string; headers: Record<string, string>; body: string };
    try {
      const tenant = await createTenant(services.ctx, CLI_ACTOR, { name: 'bench' });
      const config = {
        ...readProviderFile(path.join(here, '../scripts-examples/seed/provider.json')),
        prefixUrl: upstreamUrl,
        tokenUrl: `${upstreamUrl}/oauth/token`,
      };
      await applyProviderVersion(services.ctx, CLI_ACTOR, { tenant: tenant.id, config });
      for (const [name, value] of Object.entries(SECRETS)) {
        await setSecret(services.ctx, CLI_ACTOR, {
          tenant: tenant.id,
          provider: 'seed-pay',
          name,
          value,
          sensitive: name !== 'AppKey',
        });
      }
      serviceToken = (await createServiceToken(services.ctx, CLI_ACTOR, { tenant: tenant.id, name: 'bench' }))
        .token;
      const dry = await dryRunScript(services, CLI_ACTOR, {
        tenant: tenant.id,
        provider: 'seed-pay',
        sample: {
          method: 'POST',
          path: '/api/orders',
          body: { data: 'benchmark payload', timestamp: 1_700_000_000 },
        },
      });
      // The dry-run masks sensitive values; the signed body carries none (only ciphertext and appKey).
      signed = { url: dry.request.url, headers: dry.request.headers, body: dry.request.body ?? '' };
    } finally {
      await services.close();
    }

    const unsigned = JSON.stringify({ data: 'benchmark payload', timestamp: 1_700_000_000 });
    const startKeygate = async (extraEnv: Record<string, string>, main = KEYGATE_MAIN) => {
      const port = await freePort();
      const keygate = await startChild(main, ['serve', '--roles', 'outbound'], {
        ...process.env,
        ...env,
        KEYGATE_OUTBOUND_PORT: String(port),
        KEYGATE_LOG_LEVEL: 'info',
        // Access log off, as gateway benchmarks run (its cost: README, "Measured and not adopted").
        KEYGATE_ACCESS_LOG: 'false',
        ...extraEnv,
      });
      children.push(keygate.child);
      const req = {
        url: `http://127.0.0.1:${port}/v1/proxy/seed-pay/api/orders`,
        headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
        body: unsigned,
      };
      await expectSeedSuccess('keygate', req);
      return { child: keygate.child, req };
    };
    const keygate = await startKeygate({});
    const passthrough = await startChild(path.join(here, 'fixtures/passthrough.ts'), [upstreamUrl]);
    children.push(passthrough.child);

    const signedHeaders = {
      'content-type': 'application/json',
      authorization: signed.headers.authorization!,
    };
    const signedPath = new URL(signed.url).pathname;
    const directReq = { url: `${upstreamUrl}${signedPath}`, headers: signedHeaders, body: signed.body };
    const passthroughReq = {
      url: `http://127.0.0.1:${passthrough.info.port}${signedPath}`,
      headers: signedHeaders,
      body: signed.body,
    };
    // All three must get the provider's full answer (token checked, signature verified, data
    // decrypted and encrypted again), or the comparison is not like for like.
    await expectSeedSuccess('passthrough', passthroughReq);
    await expectSeedSuccess('direct', directReq);
    return {
      upstream: upstream.child,
      keygate,
      passthrough: passthrough.child,
      passthroughReq,
      directReq,
      startKeygate: (extraEnv, main) =>
        startKeygate({ KEYGATE_MIGRATE_ON_START: 'false', ...extraEnv }, main),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function benchOutbound(
  opts: { durationSec?: number; connectionLevels?: readonly number[]; rounds?: number } = {},
): Promise<OutboundBench> {
  const durationSec = opts.durationSec ?? 10;
  const connectionLevels = opts.connectionLevels ?? DEFAULT_CONNECTION_LEVELS;
  const rounds = opts.rounds ?? DEFAULT_ROUNDS;
  const setup = await setUpOutbound();
  try {
    // Each round loads every target at every level in turn, so that the machine's drift over the
    // run (a third of the rate within minutes) hits every level and target alike.
    const byLevel: Round[][] = connectionLevels.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, connections] of connectionLevels.entries()) {
        byLevel[i]!.push(await runRound(setup, { durationSec, connections, direct: i === 0 }));
      }
    }
    // The round with the median ratio of a level is the one shown.
    const levels: OutboundLevel[] = summarizeLevels(connectionLevels, byLevel);
    return { levels, capacity: capacityOf(levels) };
  } finally {
    await setup.close();
  }
}

type Round = { direct: LoadResult | null; passthrough: Measured; keygate: Measured; ratio: number };

/** The targets loaded one after the other at one level (the direct call at the first level only). */
async function runRound(
  setup: OutboundSetup,
  opts: { durationSec: number; connections: number; direct: boolean },
): Promise<Round> {
  const { durationSec, connections } = opts;
  const { keygate, passthrough, passthroughReq, directReq } = setup;
  const parts = { upstream: setup.upstream.pid };
  const load = { connections, durationSec, warmupSec: WARMUP_SEC };
  // BENCH_OUTBOUND_ONLY=keygate skips the baselines, for quick before/after runs while tuning.
  const skip = process.env.BENCH_OUTBOUND_ONLY === 'keygate';
  const none = {
    rps: 0,
    p50Ms: 0,
    p99Ms: 0,
    errors: 0,
    non2xx: 0,
    cpuUsPerRequest: null,
    machineUsPerRequest: null,
  };
  const direct = opts.direct && !skip ? await runLoad({ ...load, ...directReq }) : null;
  const pass = skip
    ? none
    : await measureCpu(passthrough.pid, durationSec, () => runLoad({ ...load, ...passthroughReq }), parts);
  const kg = await measureCpu(
    keygate.child.pid,
    durationSec,
    () => runLoad({ ...load, ...keygate.req }),
    parts,
  );
  return { direct, passthrough: pass, keygate: kg, ratio: pass.rps === 0 ? 0 : kg.rps / pass.rps };
}

/**
 * A/B of two keygate processes on the same data and upstream: A as built, B with `env` on top
 * (and `main`, another checkout's src/cli/main.ts, if given). Short windows alternate A B B A ..., so
 * the machine's drift, which moves whole runs by a third, hits both alike; each pair is compared
 * on its own.
 */
export async function benchOutboundAb(opts: AbOptions): Promise<AbResult<Measured>> {
  const { windowSec = 4, connections = 32 } = opts;
  const setup = await setUpOutbound();
  try {
    const b = await setup.startKeygate(opts.env, opts.main);
    const parts = { upstream: setup.upstream.pid };
    const load = { connections, durationSec: windowSec, warmupSec: WARMUP_SEC };
    return await runAb(opts, setup.keygate, b, (target) =>
      measureCpu(target.child.pid, windowSec, () => runLoad({ ...load, ...target.req }), parts),
    );
  } finally {
    await setup.close();
  }
}

async function expectSeedSuccess(
  label: string,
  req: { url: string; headers: Record<string, string>; body: string },
): Promise<void> {
  const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body });
  const text = await res.text();
  let code: unknown;
  try {
    code = (JSON.parse(text) as { code?: unknown }).code;
  } catch {
    code = undefined;
  }
  if (res.status !== 200 || code !== 0) throw new Error(`${label} warm-up failed: ${res.status} ${text}`);
}

export function printOutbound(r: OutboundBench): void {
  console.log('outbound (seed script, token cached, AES + SHA-256 + response decrypt):');
  for (const level of r.levels) {
    console.log(` at ${level.connections} connections:`);
    if (level.direct) console.log(`  direct to upstream     ${fmt(level.direct)}`);
    console.log(`  node:http+undici pass  ${fmt(level.passthrough)}`);
    console.log(`  keygate                ${fmt(level.keygate)}`);
    console.log(
      `  keygate / passthrough  ${level.ratio.toFixed(2)}x  (rounds ${level.ratios.map((x) => x.toFixed(2)).join(', ')})`,
    );
  }
  printCapacity(r.capacity, 0.75);
}

if (import.meta.main) {
  const [durationSec, connections] = process.argv.slice(2).map(Number);
  printOutbound(
    await benchOutbound({
      durationSec: durationSec || undefined,
      connectionLevels: connections ? [connections] : undefined,
    }),
  );
}
