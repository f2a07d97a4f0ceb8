/**
 * A second keygate node for redis.test.ts: its own OS process and Redis connection on the same
 * Redis. Args: redis URL, tenant, provider, token endpoint URL, number of concurrent callers.
 * Says `ready`, waits for `go`, runs the callers at once and sends back the tokens they got.
 */
import { Redis } from 'ioredis';
import { createRedisTokenCache } from './index.ts';

const [redisUrl, tenantId, provider, tokenUrl, callers] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];

const redis = new Redis(redisUrl);
const cache = createRedisTokenCache(redis);
await redis.ping();
process.send?.('ready');
process.once('message', async () => {
  const outcomes = await Promise.allSettled(
    Array.from({ length: Number(callers) }, () =>
      cache.getOrFetch(tenantId, provider, async () => {
        const res = await fetch(tokenUrl, { method: 'POST' });
        return (await res.json()) as { token: string; expireTime: number };
      }),
    ),
  );
  const tokens = outcomes.map((o) =>
    o.status === 'fulfilled' ? o.value.token : `error: ${String(o.reason)}`,
  );
  await cache.close();
  redis.disconnect();
  process.send?.({ tokens }, () => process.disconnect());
});
