import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeygateError } from '../../errors.ts';
import { canonicalQuery, canonicalString, splitRequestTarget } from './canonical.ts';

function queryError(rawQuery: string): unknown {
  try {
    canonicalQuery(rawQuery);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('canonicalQuery', () => {
  it.each([
    ['', ''],
    ['a=1', 'a=1'],
    ['b=2&a=1', 'a=1&b=2'],
    ['a=2&a=1&a=10', 'a=1&a=10&a=2'],
    ['flag', 'flag='],
    ['flag=', 'flag='],
    ['=value', '=value'],
    ['a==b', 'a=%3Db'],
    ['q=a+b', 'q=a%2Bb'],
    ['q=a%20b', 'q=a%20b'],
    ['p=%2F', 'p=%2F'],
    ['p=%2f', 'p=%2F'],
    ['t=%7E&u=%7e', 't=~&u=~'],
    ['u=%41%2d%2E%5F', 'u=A-._'],
    ['s=%E4%B8%AD', 's=%E4%B8%AD'],
    ["r=:/?@!$'()*,;", 'r=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B'],
  ])('canonicalises %j as %j', (raw, canonical) => {
    expect(canonicalQuery(raw)).toBe(canonical);
  });

  it('drops empty segments, as URLSearchParams does', () => {
    expect(canonicalQuery('a=1&&b=2&')).toBe('a=1&b=2');
    expect(canonicalQuery('&a=1')).toBe('a=1');
    expect(canonicalQuery('&&')).toBe('');
    expect([...new URLSearchParams('a=1&&b=2&').keys()]).toEqual(['a', 'b']);
  });

  it('sorts by encoded name first, so a shorter name precedes its extensions', () => {
    // Sorting the joined "name=value" strings would put "a-b=1" first ('-' < '=').
    expect(canonicalQuery('a-b=1&a=2')).toBe('a=2&a-b=1');
  });

  it('sorts the encoded bytes, not the decoded characters', () => {
    // Decoded, "é" (U+00E9) sorts after "z"; encoded, "%C3%A9" sorts before every letter.
    expect(canonicalQuery('z=1&%C3%A9=2')).toBe('%C3%A9=2&z=1');
    expect(canonicalQuery('v=b&v=B&v=%61')).toBe('v=B&v=a&v=b');
  });

  it.each([
    ['a=%zz', '%zz'],
    ['a=%4', '%4'],
    ['a=%', '%'],
    ['%g1=x', '%g1'],
  ])('rejects the malformed escape in %j', (raw, malformedEscape) => {
    const err = queryError(raw);
    expect(err).toBeInstanceOf(KeygateError);
    expect((err as KeygateError).code).toBe('KG_QUERY_MALFORMED');
    expect((err as KeygateError).message).toContain(malformedEscape);
  });

  it.each([
    ['a=%FF'],
    ['a=%C3'],
    ['a=%C0%AF'], // overlong "/"
    ['a=%ED%A0%80'], // UTF-16 surrogate
  ])('rejects %j, which does not decode to UTF-8', (raw) => {
    expect((queryError(raw) as KeygateError).code).toBe('KG_QUERY_MALFORMED');
  });

  it.each([['a=中'], ['a=b c'], ['a=\u0000'], ['a=\u007f']])('rejects the raw character in %j', (raw) => {
    expect((queryError(raw) as KeygateError).code).toBe('KG_QUERY_MALFORMED');
  });

  it('leaves its own output unchanged', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })), { maxLength: 8 }),
        (pairs) => {
          const once = canonicalQuery(
            pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&'),
          );
          expect(canonicalQuery(once)).toBe(once);
        },
      ),
    );
  });

  it('agrees with encodeURIComponent-based canonicalisation of any UTF-8 pairs', () => {
    // An independent encoder: encodeURIComponent leaves ! ' ( ) * as they are; RFC 3986 does not.
    const rfc3986 = (text: string) =>
      encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })), { maxLength: 8 }),
        (pairs) => {
          const raw = pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&');
          const expected = pairs
            .map(([n, v]) => [rfc3986(n), rfc3986(v)] as const)
            .sort(([n1, v1], [n2, v2]) => (n1 !== n2 ? (n1 < n2 ? -1 : 1) : v1 < v2 ? -1 : v1 > v2 ? 1 : 0))
            .map(([n, v]) => `${n}=${v}`)
            .join('&');
          expect(canonicalQuery(raw)).toBe(expected);
        },
      ),
    );
  });
});

describe('canonicalString', () => {
  const parts = {
    method: 'post',
    path: '/v1/orders/a%20b',
    rawQuery: 'b=1&a=2',
    keyId: 'pk_1',
    timestamp: '1700000000',
    nonce: 'abcdefghijklmnop',
    bodySha256Hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  };

  it('joins the eight lines with \\n, upper-cases the method, keeps the path as sent', () => {
    expect(canonicalString(parts)).toBe(
      [
        'KG1-HMAC-SHA256',
        'POST',
        '/v1/orders/a%20b',
        'a=2&b=1',
        'pk_1',
        '1700000000',
        'abcdefghijklmnop',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ].join('\n'),
    );
  });

  it('keeps an empty line for an empty query and has no trailing newline', () => {
    const text = canonicalString({ ...parts, rawQuery: '' });
    expect(text.split('\n')).toHaveLength(8);
    expect(text.split('\n')[3]).toBe('');
    expect(text.endsWith('\n')).toBe(false);
  });

  it('refuses a field containing a line break', () => {
    expect(() => canonicalString({ ...parts, path: '/a\nPOST' })).toThrow(KeygateError);
  });
});

describe('splitRequestTarget', () => {
  it.each([
    ['/a/b', { path: '/a/b', rawQuery: '' }],
    ['/a?', { path: '/a', rawQuery: '' }],
    ['/a?x=1?y=2', { path: '/a', rawQuery: 'x=1?y=2' }],
    ['/a%3Fb?c', { path: '/a%3Fb', rawQuery: 'c' }],
  ])('splits %j at the first ?', (target, expected) => {
    expect(splitRequestTarget(target)).toEqual(expected);
  });
});
