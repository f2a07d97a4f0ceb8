/** The rate-limit response headers (draft-ietf-httpapi-ratelimit-headers), on every inbound answer. */
import type { RateLimitDecision } from './policy.ts';

export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Policy': `"default";q=${decision.limit};w=${decision.windowSeconds}`,
    RateLimit: `"default";r=${decision.remaining};t=${decision.resetSeconds}`,
  };
  if (!decision.allowed) headers['Retry-After'] = String(decision.retryAfterSeconds ?? decision.resetSeconds);
  return headers;
}
