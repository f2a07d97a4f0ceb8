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
 * Each script also comes in a variant for verified inbound calls (`*_CLAIMS_SCRIPT`): it claims
 * each call's nonce and, on its first use only, spends one request, for any number of calls to one
 * key in one script run. The replay check and the quota spend of a call then cost one round trip,
 * shared with the other calls to the key in the same event-loop turn, and a replayed nonce spends
 * nothing. The key's state is read and written once per run: the calls are decided one after the
 * other at one `now`, exactly as that many single runs at that time would decide them.
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
 * Both token-bucket scripts: their arguments, the clock, and the bucket as it stands at `now`
 * (`tokens`, refilled since it was last saved).
 */
const BUCKET_NOW = `local capacity = tonumber(ARGV[1])
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
`;

/**
 * KEYS[1]: string "tokens:updatedAtUs:unitsPerToken" (one string rather than a hash: GET and SET PX
 * are two Redis calls where HMGET, HSET and PEXPIRE are three, and the script is the hot path)
 * ARGV: capacityUnits, unitsPerToken, refillUnitsPerMicrosecond, costUnits, expiryMarginMs, nowUs or ''
 * Returns {allowed 0|1, remaining, resetUs, retryAfterUs or -1}.
 */
export const TOKEN_BUCKET_SCRIPT = luaScript(`
${BUCKET_NOW}if tokens < cost_units then
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
 * Both GCRA scripts: their arguments, the clock, and the theoretical arrival time as it stands at
 * `now` (never in the past).
 */
const GCRA_NOW = `local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local margin_ms = tonumber(ARGV[4])
${READ_CLOCK}
local arrival = tonumber(redis.call('GET', KEYS[1]))
if arrival == nil or arrival < now then arrival = now end
`;

/**
 * KEYS[1]: string, the theoretical arrival time in microseconds
 * ARGV: emissionIntervalUs, toleranceUs, cost, expiryMarginMs, nowUs or ''
 * Returns {allowed 0|1, remaining, resetUs, retryAfterUs or -1}.
 */
export const GCRA_SCRIPT = luaScript(`
${GCRA_NOW}local next_arrival = arrival + cost * interval
local allow_at = next_arrival - tolerance
if now < allow_at then
  return {0, math.max(0, math.floor((now + tolerance - arrival) / interval)), arrival - now, allow_at - now}
end
local reset = next_arrival - now
redis.call('SET', KEYS[1], next_arrival, 'PX', math.ceil(reset / 1000) + margin_ms)
return {1, math.max(0, math.floor((now + tolerance - next_arrival) / interval)), reset, -1}
`);

const CLAIM_NONCE = `redis.call('SET', KEYS[i], '1', 'EX', ARGV[#ARGV - 1], 'NX')`;

/**
 * Token bucket, one request per call, each call first claiming its nonce.
 * KEYS[1]: the bucket, as in TOKEN_BUCKET_SCRIPT; KEYS[2..n]: one nonce key per call (all with the
 * `{pk:ID}` hash tag of KEYS[1], so one Cluster slot)
 * ARGV: capacityUnits, unitsPerToken, refillUnitsPerMicrosecond, costUnits, expiryMarginMs,
 * nonceTtlSeconds, nowUs or ''
 * Returns four numbers per call, in KEYS order: {allowed 0|1, remaining, resetUs, retryAfterUs or
 * -1}, or {-1, 0, 0, 0} for a replayed nonce.
 */
export const TOKEN_BUCKET_CLAIMS_SCRIPT = luaScript(`
${BUCKET_NOW}local replies = {}
local spent = false
for i = 2, #KEYS do
  local n = #replies
  if not ${CLAIM_NONCE} then
    replies[n + 1], replies[n + 2], replies[n + 3], replies[n + 4] = -1, 0, 0, 0
  elseif tokens < cost_units then
    replies[n + 1], replies[n + 2], replies[n + 3], replies[n + 4] = 0, math.floor(tokens / unit),
      math.ceil((capacity - tokens) / refill), math.ceil((cost_units - tokens) / refill)
  else
    tokens = tokens - cost_units
    spent = true
    replies[n + 1], replies[n + 2], replies[n + 3], replies[n + 4] = 1, math.floor(tokens / unit),
      math.ceil((capacity - tokens) / refill), -1
  end
end
if spent then
  local reset = math.ceil((capacity - tokens) / refill)
  redis.call('SET', KEYS[1], string.format('%.0f:%.0f:%.0f', tokens, now, unit), 'PX',
    math.ceil(reset / 1000) + margin_ms)
end
return replies
`);

/**
 * GCRA, one request per call, each call first claiming its nonce.
 * KEYS[1]: the theoretical arrival time, as in GCRA_SCRIPT; KEYS[2..n]: one nonce key per call
 * ARGV: emissionIntervalUs, toleranceUs, cost, expiryMarginMs, nonceTtlSeconds, nowUs or ''
 * Returns four numbers per call, as TOKEN_BUCKET_CLAIMS_SCRIPT does.
 */
export const GCRA_CLAIMS_SCRIPT = luaScript(`
${GCRA_NOW}local replies = {}
local spent = false
for i = 2, #KEYS do
  local n = #replies
  if not ${CLAIM_NONCE} then
    replies[n + 1], replies[n + 2], replies[n + 3], replies[n + 4] = -1, 0, 0, 0
  else
    local next_arrival = arrival + cost * interval
    local allow_at = next_arrival - tolerance
    if now < allow_at then
      replies[n + 1], replies[n + 2], replies[n + 3], replies[n + 4] = 0,
        math.max(0, math.floor((now + tolerance - arrival) / interval)), arrival - now, allow_at - now
    else
      arrival = next_arrival
      spent = true
      replies[n + 1], replies[n + 2], replies[n + 3], replies[n + 4] = 1,
        math.max(0, math.floor((now + tolerance - next_arrival) / interval)), next_arrival - now, -1
    end
  end
end
if spent then
  redis.call('SET', KEYS[1], arrival, 'PX', math.ceil((arrival - now) / 1000) + margin_ms)
end
return replies
`);
