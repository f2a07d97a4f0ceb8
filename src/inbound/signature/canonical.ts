/**
 * The KG1-HMAC-SHA256 canonical string (DESIGN.md "Inbound API"), shared by the gateway's verifier
 * and the partner SDK in `src/client/`. It must stay importable by partners: besides node:crypto its
 * only import is `errors.ts`, which itself imports nothing (`client.test.ts` checks the import graph).
 */
import { createHash, createHmac } from 'node:crypto';
import { KeygateError } from '../../errors.ts';

export const SIGNATURE_SCHEME = 'KG1-HMAC-SHA256';

/** The four request headers a partner signs with, spelled as partners should send them. */
export const SIGNATURE_HEADERS = {
  keyId: 'X-Api-Key',
  timestamp: 'X-Timestamp',
  nonce: 'X-Nonce',
  signature: 'X-Signature',
} as const;

export interface CanonicalParts {
  method: string;
  /** The path exactly as sent on the request line: not decoded, not normalised, without the query. */
  path: string;
  /** Everything after the first `?` of the request target, without the `?`; '' when there is none. */
  rawQuery: string;
  keyId: string;
  timestamp: string;
  nonce: string;
  bodySha256Hex: string;
}

/** The lines a partner signs, joined by `\n` with no trailing newline. */
export function canonicalString(parts: CanonicalParts): string {
  const lines = [
    SIGNATURE_SCHEME,
    parts.method.toUpperCase(),
    parts.path,
    canonicalQuery(parts.rawQuery),
    parts.keyId,
    parts.timestamp,
    parts.nonce,
    parts.bodySha256Hex,
  ];
  // A newline inside a field would let one field's text pose as the next line.
  if (lines.some((line) => line.includes('\n'))) {
    throw new KeygateError('KG_BAD_REQUEST', 'A signed request field contains a line break');
  }
  return lines.join('\n');
}

/**
 * Canonical form of a raw query string:
 * - segments split on `&`; empty segments (`a=1&&b=2`, a leading or trailing `&`) are dropped, as
 *   URLSearchParams and common server frameworks drop them, so the signature covers exactly the
 *   parameters an upstream will see;
 * - name and value split on the first `=`; a name without `=` has an empty value;
 * - each percent-decoded (`+` stays a literal plus), then re-encoded per RFC 3986: the unreserved
 *   `A-Z a-z 0-9 - . _ ~` as they are, every other UTF-8 byte as upper-case `%XX`;
 * - pairs sorted by encoded name, then by encoded value, comparing bytes (the encoded strings are
 *   ASCII, so this is also JavaScript's `<` on strings and `LC_ALL=C sort`);
 * - joined as `name=value` with `&`.
 * A malformed escape (`%zz`, `%4`), bytes that are not UTF-8, or a raw character outside printable
 * ASCII (never sent by a conforming client; node:http rejects such request lines) throws
 * KG_QUERY_MALFORMED.
 */
export function canonicalQuery(rawQuery: string): string {
  const pairs: Array<[name: string, value: string]> = [];
  for (const segment of rawQuery.split('&')) {
    if (segment === '') continue;
    const equals = segment.indexOf('=');
    const name = equals === -1 ? segment : segment.slice(0, equals);
    const value = equals === -1 ? '' : segment.slice(equals + 1);
    pairs.push([rfc3986Encode(percentDecode(name)), rfc3986Encode(percentDecode(value))]);
  }
  pairs.sort(compareEncodedPairs);
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

/** Splits an origin-form request target (`/path?query`) at its first `?`. */
export function splitRequestTarget(target: string): { path: string; rawQuery: string } {
  const question = target.indexOf('?');
  if (question === -1) return { path: target, rawQuery: '' };
  return { path: target.slice(0, question), rawQuery: target.slice(question + 1) };
}

/** Lowercase hex SHA-256; of the empty string for a request without a body. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The X-Signature value: lowercase hex HMAC-SHA256 of the canonical string under the secret. */
export function signCanonicalString(secret: string | Uint8Array, canonical: string): string {
  return createHmac('sha256', secret).update(canonical).digest('hex');
}

function compareEncodedPairs(a: [string, string], b: [string, string]): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

const HEX_DIGITS = '0123456789ABCDEF';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function percentDecode(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  let length = 0;
  let nonAscii = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x25 /* % */) {
      const high = hexValue(text.charCodeAt(i + 1));
      const low = hexValue(text.charCodeAt(i + 2));
      if (high === -1 || low === -1) {
        throw malformed(`Malformed percent-escape "${text.slice(i, i + 3)}" in the query`);
      }
      const byte = high * 16 + low;
      if (byte >= 0x80) nonAscii = true;
      bytes[length++] = byte;
      i += 2;
    } else if (code > 0x20 && code < 0x7f) {
      bytes[length++] = code;
    } else {
      throw malformed('The query contains a raw character outside printable ASCII; percent-encode it');
    }
  }
  const decoded = bytes.subarray(0, length);
  if (nonAscii && !isUtf8(decoded)) {
    throw malformed(`Percent-escapes in "${truncate(text)}" do not decode to UTF-8`);
  }
  return decoded;
}

function rfc3986Encode(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    if (isUnreserved(byte)) out += String.fromCharCode(byte);
    else out += `%${HEX_DIGITS[byte >> 4]}${HEX_DIGITS[byte & 15]}`;
  }
  return out;
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    byte === 0x2d || // -
    byte === 0x2e || // .
    byte === 0x5f || // _
    byte === 0x7e // ~
  );
}

/** 0-15 for an ASCII hex digit of either case, -1 otherwise (including NaN past the end). */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}

function malformed(detail: string): KeygateError {
  return new KeygateError('KG_QUERY_MALFORMED', detail);
}
