/**
 * A second gateway process for the exactness test: it connects to the shared Redis, loads the
 * script, prints `ready`, and waits for the wall-clock start time `startAtMs` on a stdin line. From
 * then it makes `count` decisions for one key, in waves of 20 concurrent requests 10 ms apart (as
 * the test process does, so the two interleave), and prints how many were admitted as a JSON line.
 * `claims` mode makes them as verified inbound calls do (a fresh nonce each, claimed with the spend).
 * Usage: node concurrent-decisions-worker.ts <redisUrl> <keyId> <policy JSON> <count> [decide|claims]
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RateLimitPolicy } from './policy.ts';
import { createRedisRateLimiter } from './redis-limiter.ts';

const [redisUrl = '', keyId = '', policyJson = '', count = '', mode = 'decide'] = process.argv.slice(2);
const policy = JSON.parse(policyJson) as RateLimitPolicy;
const redis = new Redis(redisUrl);
const limiter = createRedisRateLimiter(redis);
// Loads the script on a key of its own, so the race below does not start with a script load.
await limiter.decide(`${keyId}-warm-up`, policy);
const lines = createInterface({ input: process.stdin });
const startLine = once(lines, 'line');
process.stdout.write('ready\n');
const [startAtMs] = (await startLine) as [string];
lines.close();
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
  `${JSON.stringify({ admitted: decisions.filter((d) => d !== 'replayed' && d.allowed).length })}\n`,
);
await redis.quit();
