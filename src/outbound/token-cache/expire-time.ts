/**
 * Token expiry: parsing the `expireTime` a script or token endpoint hands over, and deciding when
 * a cached token is too close to its expiry to send.
 */
import { KeygateError } from '../../errors.ts';
import type { CachedToken } from './index.ts';

/** A token is refreshed this long before it expires, or 10% of its lifetime when that is shorter. */
export const DEFAULT_SKEW_MS = 30_000;

/**
 * Below this a number is epoch seconds, at or above it epoch milliseconds. 1e11 s is the year
 * 5138 and 1e11 ms is March 1973, so every real expiry falls on the right side of the line.
 */
const SECONDS_BELOW = 1e11;
/** The largest time a JavaScript Date can hold. */
const MAX_EPOCH_MS = 8.64e15;

/**
 * Epoch milliseconds from an expireTime in one of the three forms DESIGN.md allows: epoch seconds,
 * epoch milliseconds (numbers, or digit strings) or an ISO-8601 string; null for null / undefined.
 *
 * There is deliberately no fourth form: a small number is epoch seconds in 1970, never "seconds
 * from now", so a lifetime such as `expires_in` must be turned into an absolute time first
 * (`now_ms() + expires_in * 1000`). An ISO-8601 date-time without an offset is read as UTC, so the
 * answer never depends on the server's time zone. With `now`, a time not after it is rejected with
 * an error that says so, which is what catching the `expires_in` mistake looks like.
 *
 * Errors never echo a string value: a script that swaps arguments would otherwise put its token
 * into an error message.
 */
export function parseExpireTime(value: unknown, now?: number): number | null {
  if (value === null || value === undefined) return null;
  const ms = toEpochMs(value);
  if (now !== undefined && ms <= now) {
    throw new KeygateError(
      'KG_TOKEN_FETCH_FAILED',
      `token expireTime ${new Date(ms).toISOString()} is not in the future; expireTime is an absolute time ` +
        '(epoch seconds, epoch milliseconds or ISO-8601), not a lifetime such as expires_in',
    );
  }
  return ms;
}

/** What the cache keeps for one tenant + provider. */
export interface StoredToken {
  token: string;
  expiresAtMs: number | null;
  /** When the token stops being handed out (expiry minus skew); null = never. */
  refreshAtMs: number | null;
}

/** Validates a token and its expireTime and computes when to stop using it. */
export function toStoredToken(token: unknown, expireTime: unknown, now: number, skewMs: number): StoredToken {
  if (typeof token !== 'string' || token === '') {
    throw new KeygateError('KG_TOKEN_FETCH_FAILED', 'token must be a non-empty string');
  }
  const expiresAtMs = parseExpireTime(expireTime, now);
  if (expiresAtMs === null) return { token, expiresAtMs, refreshAtMs: null };
  const lifetime = expiresAtMs - now;
  return { token, expiresAtMs, refreshAtMs: expiresAtMs - Math.min(skewMs, lifetime * 0.1) };
}

export function toCachedToken(entry: StoredToken): CachedToken {
  return { token: entry.token, expiresAtMs: entry.expiresAtMs };
}

export function isFresh(entry: StoredToken, now: number): boolean {
  return entry.refreshAtMs === null || now < entry.refreshAtMs;
}

function toEpochMs(value: unknown): number {
  if (typeof value === 'number') return fromNumber(value, String(value));
  if (value instanceof Date) return fromNumber(value.getTime(), 'an invalid Date');
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^\d+(\.\d+)?$/.test(text)) return fromNumber(Number(text), 'a numeric string');
    const iso = parseIso8601(text);
    if (iso !== null) return iso;
    throw invalid(
      `a string of ${value.length} characters that is neither a number nor an ISO-8601 date-time`,
    );
  }
  throw invalid(`a value of type ${typeof value}`);
}

function fromNumber(n: number, shown: string): number {
  if (!Number.isFinite(n) || n < 0) throw invalid(shown);
  const ms = Math.round(n < SECONDS_BELOW ? n * 1000 : n);
  if (ms > MAX_EPOCH_MS) throw invalid(`${shown} (beyond the largest representable date)`);
  return ms;
}

function invalid(what: string): KeygateError {
  return new KeygateError(
    'KG_TOKEN_FETCH_FAILED',
    `token expireTime is ${what}; expected epoch seconds, epoch milliseconds or an ISO-8601 string`,
  );
}

// 2026-11-23, 2026-11-23T05:06, 2026-11-23T05:06:07.089Z, 2026-11-23 05:06:07+08:00, ...+0800
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/;

function parseIso8601(text: string): number | null {
  const m = ISO_8601.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m;
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  const local = Date.UTC(...fields, Number(frac.padEnd(3, '0').slice(0, 3)));
  // Date.UTC rolls 2026-02-30 over to March: a date that does not read back the same is garbage.
  const check = new Date(local);
  const readBack = [
    check.getUTCFullYear(),
    check.getUTCMonth(),
    check.getUTCDate(),
    check.getUTCHours(),
    check.getUTCMinutes(),
    check.getUTCSeconds(),
  ];
  if (readBack.some((v, i) => v !== fields[i])) return null;
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2) || '0');
    if (hours > 23 || minutes > 59) return null;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  return local - offsetMinutes * 60_000;
}
