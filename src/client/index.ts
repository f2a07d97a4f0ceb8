/**
 * The partner SDK (`keygate/client`): signs requests to a keygate inbound API with KG1-HMAC-SHA256.
 * It shares the canonicalisation code with the gateway's verifier, and nothing else of the server.
 *
 *   const signedFetch = createSignedFetch({ keyId, secret });
 *   await signedFetch('https://api.example.com/orders?status=open');
 */
import { randomBytes } from 'node:crypto';
import {
  canonicalString,
  SIGNATURE_HEADERS,
  sha256Hex,
  signCanonicalString,
} from '../inbound/signature/canonical.ts';

export { canonicalQuery, canonicalString, SIGNATURE_SCHEME } from '../inbound/signature/canonical.ts';

export interface SignRequestInput {
  keyId: string;
  secret: string | Uint8Array;
  method: string;
  /** The full URL the request goes to; its path and query are signed as fetch will send them. */
  url: string | URL;
  /** The exact bytes that will be sent; strings are sent (and signed) as UTF-8. */
  body?: string | Uint8Array;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
  /** Defaults to 32 random URL-safe characters. */
  nonce?: string;
}

/** The four headers that sign one request (X-Api-Key, X-Timestamp, X-Nonce, X-Signature). */
export function signRequest(input: SignRequestInput): Record<string, string> {
  // Parsing gives the path and query in the form fetch puts on the request line (WHATWG URL
  // serialisation), which is what the gateway sees and signs.
  const url = new URL(input.url);
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = input.nonce ?? randomBytes(24).toString('base64url');
  const canonical = canonicalString({
    method: input.method,
    path: url.pathname,
    rawQuery: url.search.slice(1),
    keyId: input.keyId,
    timestamp,
    nonce,
    bodySha256Hex: sha256Hex(input.body ?? ''),
  });
  return {
    [SIGNATURE_HEADERS.keyId]: input.keyId,
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: signCanonicalString(input.secret, canonical),
  };
}

export interface SignedFetchOptions {
  keyId: string;
  secret: string | Uint8Array;
  fetch?: typeof globalThis.fetch;
}

/**
 * A fetch that signs every request. The body is read to the end first (it must be hashed before it
 * is sent), so a stream body is held in memory; the bytes signed are the bytes sent.
 */
export function createSignedFetch(options: SignedFetchOptions): typeof globalThis.fetch {
  const { keyId, secret, fetch: baseFetch = globalThis.fetch } = options;
  if (!keyId) throw new TypeError('keyId is required');
  if (secret.length === 0) throw new TypeError('secret is required');

  return async function signedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    // Request serialises any body (string, bytes, Blob, URLSearchParams, FormData, stream) exactly as
    // fetch would, and sets the content type to match, multipart boundary included.
    const request = new Request(input, init);
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
    // fetch upper-cases only some methods (not PATCH); send the method that was signed.
    const method = request.method.toUpperCase();
    const headers = new Headers(request.headers);
    for (const [name, value] of Object.entries(
      signRequest({ keyId, secret, method, url: request.url, body }),
    )) {
      headers.set(name, value);
    }
    return baseFetch(request.url, {
      method,
      headers,
      body,
      signal: request.signal,
      redirect: request.redirect,
    });
  };
}
