/**
 * What of a request or response may go into an audit row: headers with credentials redacted, and
 * bodies capped to a byte budget.
 */
import { isUtf8 } from 'node:buffer';

export const REDACTED = '[REDACTED]';

/** Headers that carry credentials. X-Api-Key is kept: the key id is not a secret. */
export const REDACTED_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-signature',
  'x-api-secret',
]);

/**
 * Headers for the audit row: names lower-cased, repeated values joined with ", " (names that differ
 * only in case merged), undefined values left out, credential headers as "[REDACTED]".
 */
export function redactHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const merged = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    if (REDACTED_HEADERS.has(key)) {
      merged.set(key, REDACTED);
      continue;
    }
    const text = Array.isArray(value) ? value.join(', ') : value;
    const earlier = merged.get(key);
    merged.set(key, earlier === undefined ? text : `${earlier}, ${text}`);
  }
  // fromEntries defines own properties, so a header named __proto__ stays a plain entry.
  return Object.fromEntries(merged);
}

/**
 * `JSON.stringify(redactHeaders(headers))`, with one plain object instead of a Map and entries
 * while no two names meet in lower case (node:http and undici hand over lower-case names, and
 * keygate's own answer headers such as RateLimit-Policy are unique in any case): this runs for two
 * header sets on every inbound call.
 */
export function redactedHeadersJson(headers: Record<string, string | string[] | undefined>): string {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || !Object.hasOwn(headers, name)) continue;
    const key = name.toLowerCase();
    // Names to merge, or one a plain object cannot hold as data: the general path.
    if (key === '__proto__' || Object.hasOwn(out, key)) return JSON.stringify(redactHeaders(headers));
    out[key] = REDACTED_HEADERS.has(key) ? REDACTED : Array.isArray(value) ? value.join(', ') : value;
  }
  return JSON.stringify(out);
}

/** Marks a body stored as base64 because its bytes are not UTF-8 text. */
export const BINARY_BODY_PREFIX = 'base64:';
const BINARY_PREFIX_FIRST_BYTE = BINARY_BODY_PREFIX.charCodeAt(0);

/**
 * A body as audit text of at most capBytes UTF-8 bytes.
 *
 * - UTF-8 text (a string, or bytes that are valid UTF-8) is stored as is. Cut to capBytes, it ends
 *   on a character boundary: a multi-byte character that does not fit is left out whole.
 * - Anything else is stored as "base64:" followed by the base64 of its first bytes, as many whole
 *   3-byte groups as fit in capBytes with the prefix. Text that itself starts with "base64:" is
 *   stored the same way, so the rule to read a stored body back is unambiguous: starts with
 *   "base64:" -> decode the rest as base64 to get bytes; otherwise it is the text.
 *
 * truncated is true when anything was cut. (A cap under 7 bytes still yields the bare prefix for binary.)
 */
export function capBody(body: Uint8Array | string, capBytes: number): { text: string; truncated: boolean } {
  if (!Number.isSafeInteger(capBytes) || capBytes < 0) {
    throw new RangeError(`capBody: capBytes must be a non-negative integer, got ${capBytes}`);
  }
  if (typeof body === 'string') {
    if (body.startsWith(BINARY_BODY_PREFIX)) return capBinary(Buffer.from(body, 'utf8'), capBytes);
    if (Buffer.byteLength(body, 'utf8') <= capBytes) return { text: body, truncated: false };
    return capText(Buffer.from(body, 'utf8'), capBytes);
  }
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (
    !isUtf8(bytes) ||
    (bytes[0] === BINARY_PREFIX_FIRST_BYTE &&
      bytes.subarray(0, BINARY_BODY_PREFIX.length).toString('latin1') === BINARY_BODY_PREFIX)
  ) {
    return capBinary(bytes, capBytes);
  }
  return capText(bytes, capBytes);
}

function capText(bytes: Buffer, capBytes: number): { text: string; truncated: boolean } {
  if (bytes.length <= capBytes) return { text: bytes.toString('utf8'), truncated: false };
  // Step back over continuation bytes (10xxxxxx) to the first byte of the character cut in two.
  let end = capBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return { text: bytes.toString('utf8', 0, end), truncated: true };
}

function capBinary(bytes: Buffer, capBytes: number): { text: string; truncated: boolean } {
  const room = Math.max(0, capBytes - BINARY_BODY_PREFIX.length);
  const fits = Math.floor(room / 4) * 3;
  const kept = bytes.length <= fits ? bytes : bytes.subarray(0, fits);
  return { text: BINARY_BODY_PREFIX + kept.toString('base64'), truncated: kept.length < bytes.length };
}
