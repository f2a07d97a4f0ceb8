/**
 * One Lua script per algorithm; each decision is one script call, so read, decide and write are
 * atomic across every gateway node. They transcribe `tokenBucketStep` and `gcraStep` in model.ts
 * line by line: change both together (the property test compares them).
 *
 * Time is Redis `TIME`, so nodes with skewed clocks share one clock. Redis 7 replicates a script's
 * effects rather than the script, which is what makes `TIME` before a write allowed. The optional
 * last argument replaces `TIME` with an injected clock; only tests pass it.
 *
 * Numbers are handed to redis.call as numbers, which Redis converts with 17 significant digits, or
 * formatted with '%.0f'; never tostring() or concatenate them: Lua's own conversion keeps 14
 * significant digits and would round a microsecond timestamp.
 *
 * Each script also comes in a variant that first claims the call's nonce (`withNonceClaim`): the
 * replay check and the quota spend of one call then cost one round trip, and a replayed nonce
 * returns before anything is spent.
 */
import { createHash } from 'node:crypto';

export interface LuaScript {
  source: string;
  sha1: string;
}

function luaScript(source: string): LuaScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

const READ_CLOCK = `
local now
if ARGV[#ARGV] ~= '' then
  now = tonumber(ARGV[#ARGV])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
`;

/**
 * KEYS[1]: string "tokens:updatedAtUs:unitsPerToken" (one string rather than a hash: GET and SET PX
 * are two Redis calls where HMGET, HSET and PEXPIRE are three, and the script is the hot path)
 * ARGV: capacityUnits, unitsPerToken, refillUnitsPerMicrosecond, costUnits, expiryMarginMs, nowUs or ''
 * Returns {allowed 0|1, remaining, resetUs, retryAfterUs or -1}.
 */
export const TOKEN_BUCKET_SCRIPT = luaScript(`
local capacity = tonumber(ARGV[1])
local unit = tonumber(ARGV[2])
local refill = tonumber(ARGV[3])
local cost_units = tonumber(ARGV[4])
local margin_ms = tonumber(ARGV[5])
${READ_CLOCK}
local tokens = capacity
local updated_at = now
local saved = redis.call('GET', KEYS[1])
if saved then
  local saved_tokens, saved_at, saved_unit = string.match(saved, '^(%d+):(%d+):(%d+)$')
  if saved_unit and tonumber(saved_unit) == unit then
    tokens = tonumber(saved_tokens)
    updated_at = tonumber(saved_at)
  end
end
if tokens > capacity then tokens = capacity end
now = math.max(now, updated_at)
local elapsed = now - updated_at
if elapsed > 0 then
  if elapsed >= math.ceil((capacity - tokens) / refill) then
    tokens = capacity
  else
    tokens = tokens + elapsed * refill
  end
end
if tokens < cost_units then
  return {0, math.floor(tokens / unit), math.ceil((capacity - tokens) / refill),
    math.ceil((cost_units - tokens) / refill)}
end
tokens = tokens - cost_units
local reset = math.ceil((capacity - tokens) / refill)
redis.call('SET', KEYS[1], string.format('%.0f:%.0f:%.0f', tokens, now, unit), 'PX',
  math.ceil(reset / 1000) + margin_ms)
return {1, math.floor(tokens / unit), reset, -1}
`);

/**
 * KEYS[1]: string, the theoretical arrival time in microseconds
 * ARGV: emissionIntervalUs, toleranceUs, cost, expiryMarginMs, nowUs or ''
 * Returns {allowed 0|1, remaining, resetUs, retryAfterUs or -1}.
 */
export const GCRA_SCRIPT = luaScript(`
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local margin_ms = tonumber(ARGV[4])
${READ_CLOCK}
local arrival = tonumber(redis.call('GET', KEYS[1]))
if arrival == nil or arrival < now then arrival = now end
local next_arrival = arrival + cost * interval
local allow_at = next_arrival - tolerance
if now < allow_at then
  return {0, math.max(0, math.floor((now + tolerance - arrival) / interval)), arrival - now, allow_at - now}
end
local reset = next_arrival - now
redis.call('SET', KEYS[1], next_arrival, 'PX', math.ceil(reset / 1000) + margin_ms)
return {1, math.max(0, math.floor((now + tolerance - next_arrival) / interval)), reset, -1}
`);

/**
 * The script with the nonce claim put in front of its decision. KEYS[2] is the nonce key (same
 * `{pk:ID}` hash tag as KEYS[1], so one Cluster slot); ARGV gains the nonce TTL in whole seconds
 * just before the clock argument. Returns {-1} for a replayed nonce, with nothing spent.
 */
function withNonceClaim(script: LuaScript): LuaScript {
  const claim = `${READ_CLOCK}
if not redis.call('SET', KEYS[2], '1', 'EX', ARGV[#ARGV - 1], 'NX') then
  return {-1}
end
`;
  return luaScript(script.source.replace(READ_CLOCK, claim));
}

export const TOKEN_BUCKET_WITH_NONCE_SCRIPT = withNonceClaim(TOKEN_BUCKET_SCRIPT);
export const GCRA_WITH_NONCE_SCRIPT = withNonceClaim(GCRA_SCRIPT);
