import { describe, expect, it } from 'vitest';
import { isKeygateError } from '../../errors.ts';
import { toStoredToken } from './expire-time.ts';
import { parseExpireTime } from './index.ts';

const SECONDS = 1_795_410_367; // 2026-11-23T05:06:07Z
const MS = SECONDS * 1000;

describe('parseExpireTime', () => {
  it('reads null and undefined as "no expiry"', () => {
    expect(parseExpireTime(null)).toBeNull();
    expect(parseExpireTime(undefined)).toBeNull();
  });

  it('reads epoch seconds and epoch milliseconds, as numbers or digit strings', () => {
    expect(parseExpireTime(SECONDS)).toBe(MS);
    expect(parseExpireTime(MS + 89)).toBe(MS + 89);
    expect(parseExpireTime(SECONDS + 0.5)).toBe(MS + 500);
    expect(parseExpireTime(String(SECONDS))).toBe(MS);
    expect(parseExpireTime(` ${MS + 89} `)).toBe(MS + 89);
    expect(parseExpireTime(`${SECONDS}.25`)).toBe(MS + 250);
  });

  it('splits seconds from milliseconds at 1e11', () => {
    expect(parseExpireTime(99_999_999_999)).toBe(99_999_999_999_000);
    expect(parseExpireTime(100_000_000_000)).toBe(100_000_000_000);
  });

  it('reads ISO-8601 strings, taking a missing offset as UTC', () => {
    expect(parseExpireTime('2026-11-23T05:06:07Z')).toBe(MS);
    expect(parseExpireTime('2026-11-23T05:06:07.089Z')).toBe(MS + 89);
    expect(parseExpireTime('2026-11-23T05:06:07.089123456Z')).toBe(MS + 89);
    expect(parseExpireTime('2026-11-23t05:06:07z')).toBe(MS);
    expect(parseExpireTime('2026-11-23T13:06:07+08:00')).toBe(MS);
    expect(parseExpireTime('2026-11-23T13:06:07+0800')).toBe(MS);
    expect(parseExpireTime('2026-11-23T00:06:07-05')).toBe(MS);
    expect(parseExpireTime('2026-11-23 05:06:07')).toBe(MS);
    expect(parseExpireTime('2026-11-23T05:06')).toBe(MS - 7000);
    expect(parseExpireTime('2026-11-23')).toBe(Date.UTC(2026, 10, 23));
    expect(parseExpireTime(new Date(MS))).toBe(MS);
  });

  it.each([
    ['a word', 'soon'],
    ['an empty string', ''],
    ['a non-ISO date', 'Mon, 23 Nov 2026 05:06:07 GMT'],
    ['exponent notation', '1e12'],
    ['a negative string', '-5'],
    ['a day that does not exist', '2026-02-30T00:00:00Z'],
    ['month 13', '2026-13-01'],
    ['hour 25', '2026-11-23T25:00Z'],
    ['a bad offset', '2026-11-23T05:06:07+25:00'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a negative number', -1],
    ['beyond the last Date', 9e15],
    ['an object', { at: SECONDS }],
    ['a boolean', true],
    ['an invalid Date', new Date(Number.NaN)],
  ])('rejects %s with a clear error', (_, value) => {
    let caught: unknown;
    try {
      parseExpireTime(value);
    } catch (error) {
      caught = error;
    }
    expect(isKeygateError(caught) && caught.code).toBe('KG_TOKEN_FETCH_FAILED');
    expect((caught as Error).message).toMatch(
      /expected epoch seconds, epoch milliseconds or an ISO-8601 string/,
    );
  });

  it('never echoes a string it rejects (it might be a token passed in the wrong place)', () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.secret-looking-token';
    expect(() => parseExpireTime(token)).toThrow(/a string of 41 characters/);
    try {
      parseExpireTime(token);
    } catch (error) {
      expect((error as Error).message).not.toContain('secret-looking');
    }
  });

  it('given now, rejects a time that is not in the future, naming the expires_in mistake', () => {
    const now = MS;
    expect(parseExpireTime(MS + 1, now)).toBe(MS + 1);
    expect(() => parseExpireTime(MS, now)).toThrow(/not in the future.*not a lifetime such as expires_in/);
    // expires_in = 7200 passed as expireTime is epoch seconds in 1970, not "two hours from now".
    expect(() => parseExpireTime(7200, now)).toThrow(/1970-01-01T02:00:00.000Z is not in the future/);
  });
});

describe('refresh skew', () => {
  it('stops handing a token out 30 s before expiry, or 10% of its lifetime when that is shorter', () => {
    const now = MS;
    expect(toStoredToken('t', now + 3_600_000, now, 30_000).refreshAtMs).toBe(now + 3_570_000);
    expect(toStoredToken('t', now + 60_000, now, 30_000).refreshAtMs).toBe(now + 54_000);
    expect(toStoredToken('t', null, now, 30_000).refreshAtMs).toBeNull();
  });

  it('rejects an empty or non-string token', () => {
    expect(() => toStoredToken('', null, MS, 30_000)).toThrow(/non-empty string/);
    expect(() => toStoredToken(42, null, MS, 30_000)).toThrow(/non-empty string/);
  });
});
