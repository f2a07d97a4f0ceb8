/**
 * AES-256-GCM with associated data: the one cipher keygate uses at rest. A sealed value is
 * base64(iv | ciphertext | tag) with a random 96-bit IV and a 128-bit tag.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** iv | ciphertext | tag as bytes (the key providers wrap data keys with this). */
export function encryptGcm(key: Buffer, plaintext: Buffer | string, aad: Buffer): Buffer {
  assertKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** Inverse of encryptGcm; throws when the bytes, the key or the AAD do not match. */
export function decryptGcm(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  assertKey(key);
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value is too short');
  const iv = sealed.subarray(0, IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    // OpenSSL's message ("unable to authenticate data") says nothing useful; ours names the cause.
    throw new Error('sealed value does not authenticate (wrong key or binding, or altered)');
  }
}

/** UTF-8 text -> base64(iv | ciphertext | tag). */
export function sealText(key: Buffer, plaintext: string, aad: Buffer): string {
  return encryptGcm(key, Buffer.from(plaintext, 'utf8'), aad).toString('base64');
}

/** base64(iv | ciphertext | tag) -> UTF-8 text. */
export function openText(key: Buffer, sealed: string, aad: Buffer): string {
  return decryptGcm(key, Buffer.from(sealed, 'base64'), aad).toString('utf8');
}

/**
 * Associated data from a domain tag and fields, each length-prefixed (4-byte big-endian), so no
 * two different tuples encode to the same bytes whatever characters the fields hold.
 */
export function bindingAad(domain: string, ...fields: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const field of [domain, ...fields]) {
    const bytes = Buffer.from(field, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

function assertKey(key: Buffer): void {
  if (key.length !== KEY_BYTES)
    throw new Error(`AES-256-GCM needs a ${KEY_BYTES}-byte key, got ${key.length}`);
}
