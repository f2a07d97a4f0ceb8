/**
 * A second gateway process for the exactness test: from wall-clock time `startAtMs` it makes
 * `count` decisions for one key against the shared Redis, in waves of 20 concurrent requests 10 ms
 * apart (as the test process does, so the two interleave), and prints how many were admitted.
 * `claims` mode makes them as verified inbound calls do (a fresh nonce each, claimed with the spend).
 * Usage: node concurrent-decisions-worker.ts <redisUrl> <keyId> <policy JSON> <count> <startAtMs> [decide|claims]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RateLimitPolicy } from './policy.ts';
import { createRedisRateLimiter } from './redis-limiter.ts';

const [redisUrl = '', keyId = '', policyJson = '', count = '', startAtMs = '', mode = 'decide'] =
  process.argv.slice(2);
const policy = JSON.parse(policyJson) as RateLimitPolicy;
const redis = new Redis(redisUrl);
const limiter = createRedisRateLimiter(redis);
await redis.ping();
await sleep(Number(startAtMs) - Date.now());
const pending: Array<Promise<{ allowed: boolean } | 'replayed'>> = [];
for (let i = 0; i < Number(count); i++) {
  if (i > 0 && i % 20 === 0) await sleep(10);
  pending.push(
    mode === 'claims'
      ? limiter.claimNonceAndDecide(keyId, `worker-${i}`, 600, policy)
      : limiter.decide(keyId, policy),
  );
}
const decisions = await Promise.all(pending);
process.stdout.write(
  JSON.stringify({ admitted: decisions.filter((d) => d !== 'replayed' && d.allowed).length }),
);
await redis.quit();
