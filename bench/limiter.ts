/**
 * Rate-limiter microbenchmark: Redis limiter decisions per second against a real Redis, with many
 * decisions in flight and ioredis auto-pipelining (as the inbound listener runs it under load).
 * `claims` mode takes them as verified inbound calls do, each claiming a fresh nonce with its
 * spend; the claims on one key made in one event-loop turn share one script call, so how many keys
 * the load is spread over matters there.
 * Run directly: node bench/limiter.ts [redisUrl] [durationMs]
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RateLimitAlgorithm, RateLimitPolicy } from '../src/inbound/ratelimit/policy.ts';
import { createRedisRateLimiter } from '../src/inbound/ratelimit/redis-limiter.ts';

export interface LimiterBenchOptions {
  durationMs?: number;
  /** Decisions in flight at once. */
  concurrency?: number;
  /** Distinct partner keys the decisions are spread over. */
  keys?: number;
  algorithm?: RateLimitAlgorithm;
  mode?: 'decide' | 'claims';
}

export async function benchLimiter(
  redisUrl: string,
  {
    durationMs = 3000,
    concurrency = 256,
    keys = 1000,
    algorithm = 'token-bucket',
    mode = 'decide',
  }: LimiterBenchOptions = {},
): Promise<{ decisionsPerSec: number }> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  try {
    const limiter = createRedisRateLimiter(redis);
    const policy: RateLimitPolicy = {
      algorithm,
      rate: 1000,
      periodSeconds: 1,
      burst: 1000,
      onRedisDown: 'fail-open',
    };
    const run = randomUUID();
    const keyIds = Array.from({ length: keys }, (_, i) => `bench-${run}-${i}`);
    await limiter.decide(keyIds[0]!, policy); // loads the script

    let decisions = 0;
    const started = performance.now();
    const deadline = started + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        for (let i = worker; performance.now() < deadline; i += concurrency) {
          const keyId = keyIds[i % keys]!;
          if (mode === 'claims') await limiter.claimNonceAndDecide(keyId, `n${i}`, 60, policy);
          else await limiter.decide(keyId, policy);
          decisions++;
        }
      }),
    );
    const elapsedSeconds = (performance.now() - started) / 1000;
    return { decisionsPerSec: Math.round(decisions / elapsedSeconds) };
  } finally {
    await redis.quit();
  }
}

if (import.meta.main) {
  const redisUrl = process.argv[2] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const durationMs = Number(process.argv[3] ?? 3000);
  for (const algorithm of ['token-bucket', 'gcra'] as const) {
    const { decisionsPerSec } = await benchLimiter(redisUrl, { durationMs, algorithm });
    console.log(`limiter ${algorithm}: ${decisionsPerSec} decisions/s`);
  }
}
