/**
 * Provider-config change notifications. With Redis, every node subscribes to one channel; a
 * publish reaches all of them at once. Embedded, only this process is told, and other processes
 * sharing the SQLite file notice through the registry's version poll.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { ConfigEvents } from '../services/context.ts';
import { redisKeys } from './redis-keys.ts';

type Listener = (tenantId: string, provider: string) => void;

export function createLocalConfigEvents(): ConfigEvents {
  const emitter = new EventEmitter();
  return {
    async publish(tenantId, provider) {
      emitter.emit('change', tenantId, provider);
    },
    subscribe(listener: Listener) {
      emitter.on('change', listener);
      return () => emitter.off('change', listener);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/** `redis` publishes; `subscriber` is a dedicated connection (a subscribed connection can do nothing else). */
export function createRedisConfigEvents(redis: Redis, subscriber: Redis): ConfigEvents {
  const local = createLocalConfigEvents();
  const channel = redisKeys.configChannel();
  subscriber.subscribe(channel).catch(() => {
    // Redis down at start: ioredis re-subscribes on reconnect; the version poll covers the gap.
  });
  subscriber.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    try {
      const { tenantId, provider } = JSON.parse(message) as { tenantId: string; provider: string };
      void local.publish(tenantId, provider);
    } catch {
      // Not ours: ignore.
    }
  });
  return {
    async publish(tenantId, provider) {
      await local.publish(tenantId, provider);
      try {
        await redis.publish(channel, JSON.stringify({ tenantId, provider }));
      } catch {
        // The change is committed; other nodes still pick it up through the version poll.
      }
    },
    subscribe: local.subscribe,
    async close() {
      await local.close();
      subscriber.disconnect();
    },
  };
}
