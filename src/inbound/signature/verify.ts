/**
 * The gateway side of KG1-HMAC-SHA256: reading the four signature headers, hashing the body as it
 * streams, and the constant-time comparison against every live secret of a key.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import { KeygateError } from '../../errors.ts';
import { readBody } from '../../read-body.ts';
import { SIGNATURE_HEADERS, sha256Hex } from './canonical.ts';

export const DEFAULT_TIMESTAMP_WINDOW_SECONDS = 300;
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** A fetch `Headers`, or anything else with a case-insensitive `get`. */
export interface HeaderLookup {
  get(name: string): string | null | undefined;
}

/** node:http's `IncomingHttpHeaders` (lower-case names; repeated headers may arrive as arrays). */
export type HeaderRecord = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface ParseSignatureHeadersOptions {
  /**
   * node:http's `req.rawHeaders`. Without it a repeated header is recognised only by the comma its
   * values were joined with (none of the four headers may contain a comma).
   */
  rawHeaders?: readonly string[];
  /** The gateway clock in unix seconds. */
  nowSeconds?: number;
  /** How far X-Timestamp may be from the gateway clock, either way. */
  timestampWindowSeconds?: number;
}

export interface SignatureHeaders {
  keyId: string;
  /** X-Timestamp as sent: the canonical string signs this text, not a re-formatted number. */
  timestamp: string;
  timestampSeconds: number;
  nonce: string;
  signatureHex: string;
}

const KEY_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
const TIMESTAMP_PATTERN = /^[0-9]{1,15}$/;
const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
const SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Reads and checks the four signature headers. Throws, in this order of headers, the first of:
 * KG_AUTH_HEADER_MISSING, KG_AUTH_HEADER_DUPLICATED, KG_KEY_UNKNOWN (not a key id we could have
 * issued), KG_TIMESTAMP_INVALID, KG_TIMESTAMP_STALE, KG_NONCE_INVALID. X-Signature is checked by
 * verifyPartnerSignature.
 */
export function parseSignatureHeaders(
  headers: HeaderLookup | HeaderRecord,
  options: ParseSignatureHeadersOptions = {},
): SignatureHeaders {
  const {
    rawHeaders,
    nowSeconds = Math.floor(Date.now() / 1000),
    timestampWindowSeconds = DEFAULT_TIMESTAMP_WINDOW_SECONDS,
  } = options;
  const read = (name: string) => readSingleHeader(headers, name, rawHeaders);

  const keyId = read(SIGNATURE_HEADERS.keyId);
  const timestamp = read(SIGNATURE_HEADERS.timestamp);
  const nonce = read(SIGNATURE_HEADERS.nonce);
  const signatureHex = read(SIGNATURE_HEADERS.signature);

  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new KeygateError('KG_KEY_UNKNOWN', 'X-Api-Key is not a key id this gateway issues');
  }
  const timestampSeconds = parseTimestamp(timestamp, nowSeconds, timestampWindowSeconds);
  if (!NONCE_PATTERN.test(nonce)) {
    throw new KeygateError('KG_NONCE_INVALID', 'X-Nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -');
  }
  // A malformed X-Signature is refused by verifyPartnerSignature, with canonicalSha256 like any
  // other mismatch: the partner's canonical string may be wrong as well as its encoding.
  return { keyId, timestamp, timestampSeconds, nonce, signatureHex };
}

export interface PartnerSecret {
  version: number;
  secret: string | Uint8Array;
}

const UNMATCHABLE: readonly PartnerSecret[] = [{ version: 0, secret: randomBytes(32) }];

/**
 * Checks X-Signature against every live secret of the key (two during a rotation). All secrets are
 * tried whatever the outcome, so the time taken does not tell which one matched. On failure throws
 * KG_SIGNATURE_MISMATCH carrying `canonicalSha256`, the SHA-256 of the gateway's canonical string,
 * so a partner can find the line that differs without the gateway revealing anything secret.
 */
export function verifyPartnerSignature(input: {
  canonical: string;
  signatureHex: string;
  secrets: readonly PartnerSecret[];
}): { matchedVersion: number } {
  const { canonical, signatureHex, secrets } = input;
  const wellFormed = SIGNATURE_PATTERN.test(signatureHex);
  // A malformed value is compared as zeros so that the loop below does the same work either way.
  const presented = wellFormed ? Buffer.from(signatureHex, 'hex') : Buffer.alloc(32);
  let matchedVersion: number | undefined;
  // A key with no secret that decrypts still costs one HMAC, so its 401 takes as long as that of
  // a key with one secret and does not single it out; nothing can match the throwaway secret.
  const tried = secrets.length > 0 ? secrets : UNMATCHABLE;
  for (const { version, secret } of tried) {
    const expected = createHmac('sha256', secret).update(canonical).digest();
    const equal = timingSafeEqual(expected, presented);
    if (equal && wellFormed && matchedVersion === undefined && tried === secrets) matchedVersion = version;
  }
  if (matchedVersion === undefined) {
    const problem = wellFormed
      ? 'X-Signature does not match'
      : 'X-Signature must be 64 lowercase hex characters';
    throw new KeygateError(
      'KG_SIGNATURE_MISMATCH',
      `${problem}; compare canonicalSha256 with the SHA-256 of your canonical string`,
      { canonicalSha256: sha256Hex(canonical) },
    );
  }
  return { matchedVersion };
}

/**
 * Rejects a request whose declared Content-Length is over the limit before any of the body is read.
 * A missing or chunked length passes: `hashBodyWithLimit` still enforces the limit while streaming.
 */
export function assertContentLengthWithinLimit(
  contentLength: string | null | undefined,
  limitBytes: number = DEFAULT_BODY_LIMIT_BYTES,
): void {
  if (contentLength == null || !/^[0-9]+$/.test(contentLength)) return;
  if (Number(contentLength) > limitBytes) throw payloadTooLarge(limitBytes);
}

export interface HashedBody {
  sha256Hex: string;
  body: Buffer;
  size: number;
}

/**
 * Hashes the body as it streams in and keeps it for forwarding. Throws KG_PAYLOAD_TOO_LARGE on the
 * first chunk that takes it past the limit, so at most one chunk beyond the limit is ever held.
 *
 * On overflow the stream is deliberately left as it is rather than destroyed: destroying a node:http
 * request resets the socket, and the partner would then never see the 413. The caller answers 413
 * with `Connection: close` and node:http discards the rest.
 */
export async function hashBodyWithLimit(
  stream: AsyncIterable<Uint8Array> | Readable,
  limitBytes: number = DEFAULT_BODY_LIMIT_BYTES,
): Promise<HashedBody> {
  const hash = createHash('sha256');
  if (stream instanceof Readable) {
    const { body, size } = await readBody(
      stream,
      limitBytes,
      () => payloadTooLarge(limitBytes),
      (chunk) => hash.update(chunk),
    );
    return { sha256Hex: hash.digest('hex'), body, size };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const iterator = stream[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    const chunk = next.value;
    size += chunk.byteLength;
    if (size > limitBytes) throw payloadTooLarge(limitBytes);
    hash.update(chunk);
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return { sha256Hex: hash.digest('hex'), body: Buffer.concat(chunks, size), size };
}

function payloadTooLarge(limitBytes: number): KeygateError {
  return new KeygateError('KG_PAYLOAD_TOO_LARGE', `The request body is larger than ${limitBytes} bytes`, {
    limitBytes,
  });
}

function readSingleHeader(
  headers: HeaderLookup | HeaderRecord,
  name: string,
  rawHeaders: readonly string[] | undefined,
): string {
  const raw = isHeaderLookup(headers) ? headers.get(name) : headers[name.toLowerCase()];
  const values = raw == null ? [] : typeof raw === 'string' ? [raw] : raw;
  if (values.length === 0 || values.every((value) => value === '')) {
    throw new KeygateError('KG_AUTH_HEADER_MISSING', `${name} header is missing`, { header: name });
  }
  const [value] = values;
  if (
    value === undefined ||
    values.length > 1 ||
    value.includes(',') ||
    (rawHeaders !== undefined && countRawHeader(rawHeaders, name) > 1)
  ) {
    throw new KeygateError('KG_AUTH_HEADER_DUPLICATED', `${name} header was sent more than once`, {
      header: name,
    });
  }
  return value;
}

function isHeaderLookup(headers: HeaderLookup | HeaderRecord): headers is HeaderLookup {
  return typeof (headers as Partial<HeaderLookup>).get === 'function';
}

/** `rawHeaders` alternates names and values, names as the client spelled them. */
function countRawHeader(rawHeaders: readonly string[], name: string): number {
  const lowerName = name.toLowerCase();
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i];
    // Only a name of the same length can match: most are not lower-cased at all.
    if (raw?.length === lowerName.length && raw.toLowerCase() === lowerName) count++;
  }
  return count;
}

function parseTimestamp(timestamp: string, nowSeconds: number, windowSeconds: number): number {
  if (!TIMESTAMP_PATTERN.test(timestamp)) {
    throw new KeygateError('KG_TIMESTAMP_INVALID', 'X-Timestamp must be unix seconds (digits only)');
  }
  const timestampSeconds = Number(timestamp);
  const skew = timestampSeconds - nowSeconds;
  if (Math.abs(skew) > windowSeconds) {
    const direction = skew > 0 ? 'ahead of' : 'behind';
    // Milliseconds are the usual cause of a far-future timestamp; say so.
    const hint = timestampSeconds > nowSeconds * 100 ? ' (it looks like milliseconds)' : '';
    throw new KeygateError(
      'KG_TIMESTAMP_STALE',
      `X-Timestamp is ${Math.abs(skew)} s ${direction} the gateway clock, more than the ${windowSeconds} s allowed${hint}`,
      { serverTime: nowSeconds },
    );
  }
  return timestampSeconds;
}
