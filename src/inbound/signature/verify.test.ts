import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, KeygateError } from '../../errors.ts';
import { canonicalString } from './canonical.ts';
import {
  assertContentLengthWithinLimit,
  hashBodyWithLimit,
  parseSignatureHeaders,
  verifyPartnerSignature,
} from './verify.ts';

const NOW = 1_700_000_000;
const VALID = {
  'X-Api-Key': 'pk_live_1',
  'X-Timestamp': String(NOW),
  'X-Nonce': 'nonce_0123456789-AB',
  'X-Signature': 'a'.repeat(64),
};

function errorCode(fn: () => unknown): ErrorCode | 'no error' {
  try {
    fn();
  } catch (err) {
    if (err instanceof KeygateError) return err.code;
    throw err;
  }
  return 'no error';
}

function parse(headers: Record<string, string>, rawHeaders?: string[]) {
  return parseSignatureHeaders(new Headers(headers), { nowSeconds: NOW, rawHeaders });
}

describe('parseSignatureHeaders', () => {
  it('returns the four values, the timestamp as sent', () => {
    expect(parse(VALID)).toEqual({
      keyId: 'pk_live_1',
      timestamp: String(NOW),
      timestampSeconds: NOW,
      nonce: 'nonce_0123456789-AB',
      signatureHex: 'a'.repeat(64),
    });
  });

  it('reads node:http header records too', () => {
    const record = Object.fromEntries(Object.entries(VALID).map(([k, v]) => [k.toLowerCase(), v]));
    expect(parseSignatureHeaders(record, { nowSeconds: NOW }).keyId).toBe('pk_live_1');
  });

  it.each(Object.keys(VALID))('names the missing header %s', (name) => {
    const headers: Record<string, string> = { ...VALID };
    delete headers[name];
    const err = catchError(() => parse(headers));
    expect(err.code).toBe('KG_AUTH_HEADER_MISSING');
    expect(err.extra).toEqual({ header: name });
    expect(err.message).toContain(name);
  });

  it('treats an empty header as missing', () => {
    expect(errorCode(() => parse({ ...VALID, 'X-Nonce': '' }))).toBe('KG_AUTH_HEADER_MISSING');
  });

  it.each(Object.keys(VALID))('spots %s sent twice and joined with a comma by fetch Headers', (name) => {
    const headers = new Headers(VALID);
    headers.append(name, VALID[name as keyof typeof VALID]);
    expect(errorCode(() => parseSignatureHeaders(headers, { nowSeconds: NOW }))).toBe(
      'KG_AUTH_HEADER_DUPLICATED',
    );
  });

  it('spots a header sent twice in node:http rawHeaders, whatever its spelling', () => {
    const rawHeaders = [...Object.entries(VALID).flat(), 'x-nonce', VALID['X-Nonce']];
    expect(errorCode(() => parse(VALID, rawHeaders))).toBe('KG_AUTH_HEADER_DUPLICATED');
    expect(errorCode(() => parse(VALID, Object.entries(VALID).flat()))).toBe('no error');
  });

  it('spots a header that node:http delivered as an array', () => {
    const record = { 'x-api-key': ['pk_a', 'pk_b'], 'x-timestamp': String(NOW) };
    expect(errorCode(() => parseSignatureHeaders(record, { nowSeconds: NOW }))).toBe(
      'KG_AUTH_HEADER_DUPLICATED',
    );
  });

  it.each(['abc', '', '17e8', '1700000000.5', '-1700000000', ' 1700000000', '0x65535'])(
    'rejects the timestamp %j as invalid',
    (timestamp) => {
      // A plain record: fetch Headers would trim the leading space before we saw it.
      const record = { 'x-api-key': 'pk_live_1', 'x-timestamp': timestamp, 'x-nonce': VALID['X-Nonce'] };
      const code = errorCode(() =>
        parseSignatureHeaders({ ...record, 'x-signature': VALID['X-Signature'] }, { nowSeconds: NOW }),
      );
      expect(code).toBe(timestamp === '' ? 'KG_AUTH_HEADER_MISSING' : 'KG_TIMESTAMP_INVALID');
    },
  );

  it('accepts timestamps up to the window either way and rejects one second more', () => {
    for (const skew of [-300, 300]) {
      expect(errorCode(() => parse({ ...VALID, 'X-Timestamp': String(NOW + skew) }))).toBe('no error');
    }
    for (const skew of [-301, 301]) {
      expect(errorCode(() => parse({ ...VALID, 'X-Timestamp': String(NOW + skew) }))).toBe(
        'KG_TIMESTAMP_STALE',
      );
    }
  });

  it('takes a configured window', () => {
    const headers = new Headers({ ...VALID, 'X-Timestamp': String(NOW - 30) });
    expect(
      errorCode(() => parseSignatureHeaders(headers, { nowSeconds: NOW, timestampWindowSeconds: 10 })),
    ).toBe('KG_TIMESTAMP_STALE');
  });

  it('rejects a far-future timestamp and points at milliseconds', () => {
    const err = catchError(() => parse({ ...VALID, 'X-Timestamp': String(NOW * 1000) }));
    expect(err.code).toBe('KG_TIMESTAMP_STALE');
    expect(err.message).toContain('milliseconds');
  });

  it.each([
    ['too short', 'a'.repeat(15)],
    ['too long', 'a'.repeat(65)],
    ['with a dot', 'abcdefghijklmnop.'],
    ['with a space', 'abcdefgh ijklmnop'],
    ['non-ASCII', 'abcdefghijklmnopé'],
  ])('rejects a nonce %s', (_, nonce) => {
    expect(errorCode(() => parse({ ...VALID, 'X-Nonce': nonce }))).toBe('KG_NONCE_INVALID');
  });

  it('accepts nonces of 16 and 64 characters', () => {
    for (const nonce of ['A'.repeat(16), '_-'.repeat(32)]) {
      expect(errorCode(() => parse({ ...VALID, 'X-Nonce': nonce }))).toBe('no error');
    }
  });

  it.each([['A'.repeat(64)], ['a'.repeat(63)], ['g'.repeat(64)]])(
    'leaves the signature %s to verifyPartnerSignature, which can name the canonical string',
    (signature) => {
      expect(errorCode(() => parse({ ...VALID, 'X-Signature': signature }))).toBe('no error');
    },
  );

  it('rejects a key id we could not have issued', () => {
    expect(errorCode(() => parse({ ...VALID, 'X-Api-Key': 'k'.repeat(129) }))).toBe('KG_KEY_UNKNOWN');
  });

  it('throws nothing but KeygateError for arbitrary header values and queries', () => {
    const queryCharacter = fc.oneof(
      fc.constantFrom('%', '&', '=', '+', 'a', 'F', '0', '9', '~', '中', ' ', '\n'),
      fc.string({ unit: 'binary', maxLength: 1 }),
    );
    const headerValue = fc.oneof(
      fc.string({ unit: 'binary-ascii' }),
      fc.string({ unit: 'binary' }),
      fc.stringMatching(/^[0-9]{0,20}$/),
      fc.stringMatching(/^[A-Za-z0-9_,-]{0,70}$/),
      fc.array(fc.string(), { maxLength: 3 }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('x-api-key', 'x-timestamp', 'x-nonce', 'x-signature', 'other'),
          headerValue,
        ),
        fc.option(fc.array(fc.string()), { nil: undefined }),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.string({ unit: queryCharacter, maxLength: 40 }),
        (record, rawHeaders, nowSeconds, rawQuery) => {
          try {
            const parsed = parseSignatureHeaders(record, { rawHeaders, nowSeconds });
            canonicalString({ method: 'GET', path: '/', rawQuery, bodySha256Hex: '', ...parsed });
          } catch (err) {
            expect(err).toBeInstanceOf(KeygateError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('verifyPartnerSignature', () => {
  const canonical = 'KG1-HMAC-SHA256\nGET\n/x\n\npk\n1\nnonce\nhash';
  const sign = (secret: string) => createHmac('sha256', secret).update(canonical).digest('hex');
  const secrets = [
    { version: 1, secret: 'old-secret' },
    { version: 2, secret: Buffer.from('new-secret') },
  ];

  it('reports which of two live secrets matched', () => {
    expect(verifyPartnerSignature({ canonical, signatureHex: sign('old-secret'), secrets })).toEqual({
      matchedVersion: 1,
    });
    expect(verifyPartnerSignature({ canonical, signatureHex: sign('new-secret'), secrets })).toEqual({
      matchedVersion: 2,
    });
  });

  it('fails with the SHA-256 of the canonical string, and no secret material', () => {
    const err = catchError(() => verifyPartnerSignature({ canonical, signatureHex: sign('other'), secrets }));
    expect(err.code).toBe('KG_SIGNATURE_MISMATCH');
    expect(err.extra).toEqual({ canonicalSha256: createHash('sha256').update(canonical).digest('hex') });
    const everything = JSON.stringify({ message: err.message, extra: err.extra });
    expect(everything).not.toContain('secret');
    expect(everything).not.toContain(sign('old-secret'));
  });

  it('fails a malformed signature with the format named and canonicalSha256', () => {
    for (const signatureHex of [sign('old-secret').toUpperCase(), sign('old-secret').slice(2), 'x']) {
      const err = catchError(() => verifyPartnerSignature({ canonical, signatureHex, secrets }));
      expect(err.code).toBe('KG_SIGNATURE_MISMATCH');
      expect(err.message).toContain('64 lowercase hex characters');
      expect(err.extra).toEqual({ canonicalSha256: createHash('sha256').update(canonical).digest('hex') });
    }
  });

  it('fails when the key has no live secret, or the signature is malformed', () => {
    expect(
      errorCode(() => verifyPartnerSignature({ canonical, signatureHex: sign('old-secret'), secrets: [] })),
    ).toBe('KG_SIGNATURE_MISMATCH');
    expect(
      errorCode(() =>
        verifyPartnerSignature({ canonical, signatureHex: sign('old-secret').slice(2), secrets }),
      ),
    ).toBe('KG_SIGNATURE_MISMATCH');
    expect(
      errorCode(() =>
        verifyPartnerSignature({ canonical, signatureHex: sign('old-secret').toUpperCase(), secrets }),
      ),
    ).toBe('KG_SIGNATURE_MISMATCH');
  });
});

describe('assertContentLengthWithinLimit', () => {
  it('rejects a declared length over the limit before anything is read', () => {
    expect(errorCode(() => assertContentLengthWithinLimit('1025', 1024))).toBe('KG_PAYLOAD_TOO_LARGE');
    expect(errorCode(() => assertContentLengthWithinLimit('1024', 1024))).toBe('no error');
    expect(errorCode(() => assertContentLengthWithinLimit(null, 1024))).toBe('no error');
  });
});

describe('hashBodyWithLimit', () => {
  it('hashes and keeps the body', async () => {
    const chunks = [Buffer.from('hello '), new TextEncoder().encode('wörld')];
    const result = await hashBodyWithLimit(iterate(chunks), 100);
    expect(result.body.toString()).toBe('hello wörld');
    expect(result.size).toBe(Buffer.byteLength('hello wörld'));
    expect(result.sha256Hex).toBe(createHash('sha256').update('hello wörld').digest('hex'));
  });

  it('hashes an empty body as the empty string', async () => {
    const result = await hashBodyWithLimit(iterate([]), 100);
    expect(result.sha256Hex).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('accepts exactly the limit', async () => {
    await expect(
      hashBodyWithLimit(iterate([Buffer.alloc(60), Buffer.alloc(40)]), 100),
    ).resolves.toMatchObject({
      size: 100,
    });
  });

  it('stops pulling at the first chunk past the limit', async () => {
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled++;
        yield Buffer.alloc(1000);
      }
    }
    await expect(hashBodyWithLimit(endless(), 10_500)).rejects.toMatchObject({
      code: 'KG_PAYLOAD_TOO_LARGE',
    });
    expect(pulled).toBe(11);
  });

  it('lets a node:http server answer 413 while the client is still sending, having read little more than the limit', async () => {
    const limit = 64 * 1024;
    let bytesReadBySocket = -1;
    let bodyError: unknown;
    const server = http.createServer(async (req, res) => {
      try {
        await hashBodyWithLimit(req, limit);
      } catch (err) {
        bodyError = err;
      }
      bytesReadBySocket = req.socket.bytesRead;
      res.writeHead(413, { connection: 'close' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        body: Buffer.alloc(8 * 1024 * 1024),
      });
      expect(response.status).toBe(413);
      expect(bodyError).toMatchObject({ code: 'KG_PAYLOAD_TOO_LARGE' });
      expect(bytesReadBySocket).toBeGreaterThan(limit);
      expect(bytesReadBySocket).toBeLessThan(limit + 256 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

async function* iterate(chunks: Uint8Array[]) {
  yield* chunks;
}

function catchError(fn: () => unknown): KeygateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KeygateError) return err;
    throw err;
  }
  throw new Error('expected a KeygateError');
}
