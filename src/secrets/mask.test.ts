import { describe, expect, it } from 'vitest';
import { createMasker, MASK, maskJson } from './mask.ts';

describe('createMasker', () => {
  const secret = 'sk_live_Zx9+/Q==abc';
  const mask = createMasker([secret, 'abc' /* too short to mask */]);

  it('masks the value verbatim, JSON-escaped and URL-encoded', () => {
    expect(mask(`token=${secret}&x=abc`)).toBe(`token=${MASK}&x=abc`);
    const pem = '-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----';
    const pemMask = createMasker([pem]);
    expect(pemMask(JSON.stringify({ key: pem }))).toBe(`{"key":"${MASK}"}`);
    expect(mask(`?k=${encodeURIComponent(secret)}`)).toBe(`?k=${MASK}`);
  });

  it('masks a value in JSON nested as a string inside JSON (escaped twice)', () => {
    const quoted = 'p@ss w"rd/+=xyz\\';
    const m = createMasker([quoted]);
    const nested = JSON.stringify({ bizContent: JSON.stringify({ s: quoted }) });
    expect(m(nested)).toBe(JSON.stringify({ bizContent: JSON.stringify({ s: MASK }) }));
    // ... and that JSON sent as a form field.
    const form = new URLSearchParams({ biz_content: JSON.stringify({ s: quoted }) }).toString();
    expect(m(form)).toBe(
      `biz_content=${encodeURIComponent('{"s":"').replaceAll('%20', '+')}${MASK}${encodeURIComponent('"}')}`,
    );
    // ... and non-ASCII escaped twice, in bytes read as latin1.
    const accented = createMasker(['clé "privée"']);
    const bytes = Buffer.from(JSON.stringify({ b: JSON.stringify({ s: 'clé "privée"' }) }), 'utf8');
    expect(Buffer.from(accented(bytes.toString('latin1')), 'latin1').toString('utf8')).toBe(
      JSON.stringify({ b: JSON.stringify({ s: MASK }) }),
    );
  });

  it('masks non-ASCII values in text and in bytes decoded as latin1', () => {
    const m = createMasker(['pässwörd-€']);
    expect(m('a pässwörd-€ b')).toBe(`a ${MASK} b`);
    const bytes = Buffer.from('{"v":"pässwörd-€"}', 'utf8');
    expect(Buffer.from(m(bytes.toString('latin1')), 'latin1').toString('utf8')).toBe(`{"v":"${MASK}"}`);
  });

  it('masks base64, base64url and hex forms', () => {
    const bytes = Buffer.from(secret);
    for (const form of [
      bytes.toString('base64'),
      bytes.toString('base64url'),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
    ]) {
      expect(mask(`before ${form} after`)).not.toContain(form.slice(0, 12));
      expect(mask(`before ${form} after`)).toMatch(/^before \*\*\*\*.{0,3} after$/);
    }
  });

  it('masks a value base64-encoded inside a larger blob, as in HTTP Basic', () => {
    const appSecret = 'S3cr3t-Value-0123456789';
    const basicMask = createMasker([appSecret]);
    for (const appKey of ['k', 'ke', 'key']) {
      const header = `Basic ${Buffer.from(`${appKey}:${appSecret}`).toString('base64')}`;
      const masked = basicMask(header);
      expect(masked).toContain(MASK);
      // What is left cannot hold the secret: at most a few characters around the mask.
      expect(masked.replace(MASK, '').length).toBeLessThan(6 + 8 + 4);
    }
  });

  it('masks the longest value first and leaves text without secrets alone', () => {
    const m = createMasker(['abcd', 'abcdefgh']);
    expect(m('xxabcdefghxx abcd')).toBe(`xx${MASK}xx ${MASK}`);
    const text = 'nothing to see here';
    expect(m(text)).toBe(text);
    expect(createMasker([])('abc')).toBe('abc');
  });

  it('treats regular-expression characters literally', () => {
    const m = createMasker(['a.b*c(d)[e]{f}|g\\h^$']);
    expect(m('xa.b*c(d)[e]{f}|g\\h^$y')).toBe(`x${MASK}y`);
    expect(m('xaXbbbcdefghy')).toBe('xaXbbbcdefghy');
  });
});

describe('maskJson', () => {
  it('masks strings, keys and numbers that spell a secret, without touching the input', () => {
    const mask = createMasker(['topsecret', '98765432']);
    const input = {
      a: 'x topsecret y',
      topsecret: 1,
      n: 98765432,
      list: [{ deep: 'topsecret' }, 5, null, true],
    };
    expect(maskJson(input, mask)).toEqual({
      a: `x ${MASK} y`,
      [MASK]: 1,
      n: MASK,
      list: [{ deep: MASK }, 5, null, true],
    });
    expect(input.a).toBe('x topsecret y');
  });
});
