export { rateLimitHeaders } from './headers.ts';
export { createMemoryRateLimiter, type MemoryRateLimiterOptions } from './memory-limiter.ts';
export {
  type OnRedisDown,
  type RateLimitAlgorithm,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitPolicy,
  validateRateLimitPolicy,
} from './policy.ts';
export { createRedisRateLimiter, type RedisRateLimiterOptions } from './redis-limiter.ts';
export {
  createResilientRateLimiter,
  type RateLimiterLogger,
  type ResilientRateLimiterOptions,
} from './resilient-limiter.ts';
