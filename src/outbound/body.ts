/**
 * The caller's body as signing code sees it: a JSON object, form fields, raw text, or nothing;
 * and back to bytes for the upstream.
 */
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { KeygateError } from '../errors.ts';
import { type BodyValue, jsonBodyFromText } from '../sandbox/index.ts';

export type { BodyValue };

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;
const FORM_TYPE = /^application\/x-www-form-urlencoded\b/i;

/**
 * Undoes a request or response content-encoding; unknown encodings are refused: the caller's with
 * 400 KG_BAD_REQUEST, an upstream's with 502 KG_UPSTREAM_UNDECODABLE (keygate must read an answer
 * to mask secrets in it, so it cannot pass one through unread). An empty body (a HEAD or 304
 * answer) has nothing to decode.
 */
export function decodeContentEncoding(
  bytes: Buffer,
  encoding: string | undefined,
  what: 'request' | 'upstream response',
): Buffer {
  const enc = (encoding ?? '').trim().toLowerCase();
  const code = what === 'request' ? 'KG_BAD_REQUEST' : 'KG_UPSTREAM_UNDECODABLE';
  if (bytes.length === 0) return bytes;
  try {
    if (enc === '' || enc === 'identity') return bytes;
    if (enc === 'gzip' || enc === 'x-gzip') return gunzipSync(bytes);
    if (enc === 'deflate') return inflateSync(bytes);
    if (enc === 'br') return brotliDecompressSync(bytes);
  } catch {
    throw new KeygateError(code, `${what} body is not valid ${enc}`);
  }
  throw new KeygateError(code, `${what} content-encoding ${enc} is not supported`);
}

/**
 * The caller's body by its content type. A JSON body is parsed here (KG_BAD_REQUEST when it is not
 * JSON), unless `jsonAsText`: then it stays its text and is parsed only where it is read (a request
 * script reads it inside the isolate), for signing code that does not change it in place.
 */
export function parseRequestBody(
  bytes: Buffer,
  contentType: string | undefined,
  { jsonAsText = false }: { jsonAsText?: boolean } = {},
): BodyValue {
  if (bytes.length === 0) return { kind: 'none' };
  const text = bytes.toString('utf8');
  if (contentType && JSON_TYPE.test(contentType)) {
    const body = jsonBodyFromText(text);
    return jsonAsText ? body : { kind: 'json', value: body.value };
  }
  if (contentType && FORM_TYPE.test(contentType)) {
    return { kind: 'form', fields: [...new URLSearchParams(text)] };
  }
  return { kind: 'raw', text };
}

/** Bytes and content type to send upstream; `undefined` body for kind none. */
export function serializeBody(
  body: BodyValue,
  originalContentType: string | undefined,
): { bytes: Buffer | undefined; contentType: string | undefined } {
  switch (body.kind) {
    case 'none':
      return { bytes: undefined, contentType: undefined };
    case 'json':
      return {
        bytes: Buffer.from(body.text ?? JSON.stringify(body.value)),
        contentType:
          originalContentType && JSON_TYPE.test(originalContentType)
            ? originalContentType
            : 'application/json',
      };
    case 'form':
      return {
        bytes: Buffer.from(new URLSearchParams(body.fields).toString()),
        contentType: 'application/x-www-form-urlencoded',
      };
    case 'raw':
      return { bytes: Buffer.from(body.text), contentType: originalContentType };
    default:
      throw new KeygateError('KG_INTERNAL', 'unknown body kind');
  }
}

/** The entries `buildSignStr` and `simple` mode see: a JSON object's members, or form fields. */
export function bodyFields(body: BodyValue): Array<[string, unknown]> | undefined {
  if (body.kind === 'form') return body.fields;
  if (
    body.kind === 'json' &&
    body.value !== null &&
    typeof body.value === 'object' &&
    !Array.isArray(body.value)
  ) {
    return Object.entries(body.value as Record<string, unknown>);
  }
  return undefined;
}

export function isJsonContentType(contentType: string | undefined): boolean {
  return !!contentType && JSON_TYPE.test(contentType);
}

/**
 * Whether an upstream answer is worth parsing as JSON for the response script: a JSON content
 * type, or none or a `text/*` one with a body that starts like a JSON object or array (many
 * providers send JSON as text/plain or text/html). Parsing is tried, never required: a body that
 * only looks like JSON still reaches the script as respBody null.
 */
export function mayBeJsonAnswer(contentType: string | undefined, body: string): boolean {
  if (isJsonContentType(contentType)) return true;
  if (contentType !== undefined && !/^\s*text\//i.test(contentType)) return false;
  return /^\s*[[{]/.test(body);
}
