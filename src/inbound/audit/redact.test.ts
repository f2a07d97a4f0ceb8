import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BINARY_BODY_PREFIX, capBody, REDACTED, redactedHeadersJson, redactHeaders } from './redact.ts';

describe('redactHeaders', () => {
  it('redacts every credential header, whatever its case, and keeps the key id', () => {
    const out = redactHeaders({
      Authorization: 'Bearer abc',
      'proxy-authorization': 'Basic xyz',
      Cookie: 'sid=1',
      'set-cookie': ['a=1', 'b=2'],
      'X-Signature': 'deadbeef',
      'x-api-secret': 's3cr3t',
      'X-Api-Key': 'pk_live_1',
      'X-Timestamp': '1700000000',
      'content-type': 'application/json',
    });
    expect(out).toEqual({
      authorization: REDACTED,
      'proxy-authorization': REDACTED,
      cookie: REDACTED,
      'set-cookie': REDACTED,
      'x-signature': REDACTED,
      'x-api-secret': REDACTED,
      'x-api-key': 'pk_live_1',
      'x-timestamp': '1700000000',
      'content-type': 'application/json',
    });
    const text = JSON.stringify(out);
    for (const secret of ['abc', 'xyz', 'sid=1', 'a=1', 'deadbeef', 's3cr3t'])
      expect(text).not.toContain(secret);
  });

  it('joins repeated values, merges names that differ in case, drops undefined', () => {
    expect(
      redactHeaders({
        Accept: ['a/b', 'c/d'],
        accept: 'e/f',
        'x-empty': undefined,
        AUTHORIZATION: 'x',
        authorization: 'y',
      }),
    ).toEqual({ accept: 'a/b, c/d, e/f', authorization: REDACTED });
  });

  it('keeps a header named __proto__ as a plain entry', () => {
    const out = redactHeaders(JSON.parse('{"__proto__":"x"}') as Record<string, string>);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe('{"__proto__":"x"}');
  });
});

describe('redactedHeadersJson', () => {
  it('writes exactly what JSON.stringify(redactHeaders()) writes', () => {
    const cases: Array<Record<string, string | string[] | undefined>> = [
      {},
      { 'content-type': 'application/json', authorization: 'Bearer abc', 'set-cookie': ['a=1', 'b=2'] },
      { 'x-api-key': 'pk_1', 'x-signature': 'deadbeef', 'x-empty': undefined, accept: ['a/b', 'c/d'] },
      { Accept: ['a/b'], accept: 'e/f', AUTHORIZATION: 'x' },
      JSON.parse('{"__proto__":"x","quote\\"d":"line\\nbreak"}'),
    ];
    for (const headers of cases)
      expect(redactedHeadersJson(headers)).toBe(JSON.stringify(redactHeaders(headers)));
    expect(redactedHeadersJson(cases[1]!)).not.toContain('abc');
  });

  it('agrees with redactHeaders on any header set', () => {
    const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined));
    const name = fc.oneof(
      fc.constantFrom('authorization', 'Authorization', 'cookie', 'x-signature', 'x-api-key', 'accept'),
      fc.string({ minLength: 1, maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.dictionary(name, value), (headers) => {
        expect(redactedHeadersJson(headers)).toBe(JSON.stringify(redactHeaders(headers)));
      }),
    );
  });
});

describe('capBody', () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);

  it('keeps text within the cap as is', () => {
    expect(capBody('{"a":1}', 7)).toEqual({ text: '{"a":1}', truncated: false });
    expect(capBody(utf8('héllo'), 6)).toEqual({ text: 'héllo', truncated: false });
    expect(capBody('', 0)).toEqual({ text: '', truncated: false });
    expect(capBody(new Uint8Array(0), 0)).toEqual({ text: '', truncated: false });
  });

  it('cuts text on a character boundary, never inside a multi-byte character', () => {
    // "aé€😀": a (1 byte) é (2) € (3) 😀 (4) = 10 bytes
    const body = 'aé€😀';
    const expected = ['', 'a', 'a', 'aé', 'aé', 'aé', 'aé€', 'aé€', 'aé€', 'aé€'];
    for (let cap = 0; cap < 10; cap += 1) {
      for (const input of [body, utf8(body)]) {
        const out = capBody(input, cap);
        expect(out, `cap ${cap}`).toEqual({ text: expected[cap], truncated: true });
        expect(Buffer.byteLength(out.text)).toBeLessThanOrEqual(cap);
        expect(out.text).not.toContain('\uFFFD');
      }
    }
    expect(capBody(body, 10)).toEqual({ text: body, truncated: false });
  });

  it('stores binary bodies as base64 with a prefix, within the cap', () => {
    const bytes = Uint8Array.from([0xff, 0xfe, 0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86]);
    expect(capBody(bytes, 100)).toEqual({
      text: `base64:${Buffer.from(bytes).toString('base64')}`,
      truncated: false,
    });
    // 7 bytes of prefix + 8 of base64 = 6 raw bytes
    const cut = capBody(bytes, 18);
    expect(cut).toEqual({
      text: `base64:${Buffer.from(bytes.subarray(0, 6)).toString('base64')}`,
      truncated: true,
    });
    expect(cut.text.length).toBeLessThanOrEqual(18);
    expect(capBody(bytes, 3)).toEqual({ text: BINARY_BODY_PREFIX, truncated: true });
  });

  it('treats invalid UTF-8 (a lone continuation byte, a split character) as binary', () => {
    expect(capBody(Uint8Array.from([0x61, 0x80]), 100).text).toBe('base64:YYA=');
    expect(capBody(utf8('€').subarray(0, 2), 100).text).toMatch(/^base64:/);
  });

  it('stores text that starts with the prefix as base64, so reading back is unambiguous', () => {
    const out = capBody('base64:not really', 100);
    expect(out.text.startsWith(BINARY_BODY_PREFIX)).toBe(true);
    expect(Buffer.from(out.text.slice(BINARY_BODY_PREFIX.length), 'base64').toString()).toBe(
      'base64:not really',
    );
    expect(capBody(utf8('base64:x'), 100).text).toBe(`base64:${Buffer.from('base64:x').toString('base64')}`);
  });

  it('honours a view into a larger buffer', () => {
    const big = utf8('xxhello world');
    expect(capBody(big.subarray(2, 7), 100)).toEqual({ text: 'hello', truncated: false });
  });

  it('rejects a bad cap', () => {
    expect(() => capBody('x', -1)).toThrow(RangeError);
    expect(() => capBody('x', 1.5)).toThrow(RangeError);
  });
});
