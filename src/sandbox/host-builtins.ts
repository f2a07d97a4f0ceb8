/**
 * The host (Node) side of the script built-ins that need node:crypto or a provider secret. The
 * bootstrap inside the isolate checks argument types and calls these through one synchronous
 * isolated-vm Callback; the encodings, dates, token and request helpers live in bootstrap.js.
 *
 * Bytes cross the isolate boundary as latin1 strings (one char per byte), both ways: isolated-vm
 * copies a string for about 0.1 us but a Uint8Array for about 3 us (it goes through V8's
 * serializer), and the seed script makes two such calls per request. A string also cannot carry
 * the rest of a pooled Buffer's memory along with it.
 *
 * Rules every built-in here follows:
 * - an argument that is a key or data arrives as a string (the script's text, UTF-8 encoded here)
 *   or a Buffer (bytes from the script);
 * - a failure is a BuiltinError whose message starts with the built-in's name and never contains
 *   key material or a secret.
 */
import {
  type CipherGCMTypes,
  type Cipheriv,
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPublicKey,
  createSecretKey,
  type Decipheriv,
  hash,
  type KeyObject,
  publicEncrypt,
  randomBytes,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import type { ErrorCode } from '../errors.ts';
import { PemError, readPrivateKey, readPublicKey } from './pem.ts';

/** What a built-in hands back to the isolate: text, a latin1 string of bytes, or a boolean. */
export type HostValue = string | boolean;

/** A built-in's failure; the bootstrap rethrows it inside the isolate as an Error. */
export class BuiltinError extends Error {
  readonly code: ErrorCode;

  constructor(builtin: string, problem: string, code: ErrorCode = 'KG_SCRIPT_ERROR') {
    super(`${builtin}: ${problem}`);
    this.name = 'BuiltinError';
    this.code = code;
  }
}

/** What a built-in may use besides its arguments (one per tenant script; secrets set per run). */
export interface BuiltinContext {
  secrets: Readonly<Record<string, string>>;
  unreadableSecrets?: ReadonlySet<string> | undefined;
  keys: KeyObjectCache;
  /** Live OpenSSL contexts per cached AES / SM4 key (see BlockStream). */
  blockStreams: WeakMap<KeyObject, Map<string, BlockStream>>;
}

type BuiltinResult = string | boolean | Buffer;
type HostBuiltin = (args: readonly unknown[], ctx: BuiltinContext, name: string) => BuiltinResult;

/**
 * Parsed keys, per tenant script. node:crypto is slow with raw key bytes (about 30 us to set up an
 * AES cipher from a Buffer, 3 us from a KeyObject) and parsing an RSA PEM costs far more, while a
 * script uses the same few keys on every request. Only ids up to 16 KiB are kept (any real key or
 * PEM fits), so a script cannot make the host hold megabytes of "keys".
 */
export class KeyObjectCache {
  static readonly MAX_ID_LENGTH = 16_384;
  readonly #entries = new Map<string, KeyObject>();
  readonly #capacity: number;

  constructor(capacity = 32) {
    this.#capacity = capacity;
  }

  get(id: string, create: () => KeyObject): KeyObject {
    if (id.length > KeyObjectCache.MAX_ID_LENGTH) return create();
    const cached = this.#entries.get(id);
    if (cached !== undefined) return cached;
    const key = create();
    if (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(id, key);
    return key;
  }
}

// ---------------------------------------------------------------------------------------------
// Arguments and results

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value;
}

function bytesArg(name: string, label: string, value: unknown): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new BuiltinError(name, `${label} must be a string or bytes, got ${describeType(value)}`);
}

function optionalBytesArg(name: string, label: string, value: unknown): Buffer | undefined {
  return value === undefined || value === null ? undefined : bytesArg(name, label, value);
}

function textArg(name: string, label: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  throw new BuiltinError(name, `${label} must be a string or bytes, got ${describeType(value)}`);
}

function optionsArg(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)) {
    return value as Record<string, unknown>;
  }
  throw new BuiltinError(name, `options must be an object, got ${describeType(value)}`);
}

/**
 * Key bytes as a KeyObject, with the length checked against what the cipher takes. `family`
 * keeps an AES key and an SM4 key with the same bytes apart (each gets its own ECB cipher). A key
 * given as text is cached under that text (scripts pass the same secret on every call, so a hit
 * costs no conversion); key bytes are cached under their latin1 form, apart from text keys.
 */
function symmetricKey(
  ctx: BuiltinContext,
  name: string,
  family: string,
  value: unknown,
  lengths: readonly number[],
): KeyObject {
  const bytes = typeof value === 'string' ? null : bytesArg(name, 'key', value);
  const id =
    bytes === null ? `${family}:text:${value as string}` : `${family}:bytes:${bytes.toString('latin1')}`;
  return ctx.keys.get(id, () => {
    const key = bytes ?? bytesArg(name, 'key', value);
    if (!lengths.includes(key.length)) {
      const allowed =
        lengths.length === 1 ? `${lengths[0]}` : `${lengths.slice(0, -1).join(', ')} or ${lengths.at(-1)}`;
      throw new BuiltinError(name, `key must be ${allowed} bytes, got ${key.length}`);
    }
    return createSecretKey(key);
  });
}

function exactBytes(name: string, label: string, value: unknown, length: number): Buffer {
  const bytes = bytesArg(name, label, value);
  if (bytes.length !== length)
    throw new BuiltinError(name, `${label} must be ${length} bytes, got ${bytes.length}`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Hashes and HMAC

function hashHex(algorithm: string): HostBuiltin {
  return (args, _ctx, name) => hash(algorithm, bytesArg(name, 'data', args[0]), 'hex');
}

function hmacDigest(ctx: BuiltinContext, name: string, algorithm: string, args: readonly unknown[]): Buffer {
  // HMAC takes keys of any length, including empty ones.
  const keyBytes = bytesArg(name, 'key', args[0]);
  const data = bytesArg(name, 'data', args[1]);
  if (keyBytes.length === 0) return createHmac(algorithm, keyBytes).update(data).digest();
  const key = ctx.keys.get(`hmac:${keyBytes.toString('latin1')}`, () => createSecretKey(keyBytes));
  return createHmac(algorithm, key).update(data).digest();
}

function hmacHex(algorithm: string): HostBuiltin {
  return (args, ctx, name) => hmacDigest(ctx, name, algorithm, args).toString('hex');
}

function hmacBytes(algorithm: string): HostBuiltin {
  return (args, ctx, name) => hmacDigest(ctx, name, algorithm, args);
}

// ---------------------------------------------------------------------------------------------
// Block ciphers in CBC / ECB mode (AES, SM4)

type Padding = { kind: 'pkcs7' } | { kind: 'none' } | { kind: 'block'; block: number };

const PKCS7: Padding = { kind: 'pkcs7' };
const BLOCK_BYTES = 16;

function paddingOption(name: string, value: unknown): Padding {
  const padding = optionsArg(name, value)['padding'];
  if (padding === undefined || padding === 'pkcs7' || padding === 'pkcs5') return PKCS7;
  if (padding === 'none') return { kind: 'none' };
  if (typeof padding === 'object' && padding !== null) {
    const block = (padding as Record<string, unknown>)['block'];
    if (
      typeof block === 'number' &&
      Number.isInteger(block) &&
      block >= 16 &&
      block <= 240 &&
      block % 16 === 0
    ) {
      return { kind: 'block', block };
    }
  }
  throw new BuiltinError(
    name,
    `options.padding must be 'pkcs7', 'none' or { block: n } with n a multiple of 16 up to 240`,
  );
}

/**
 * Strips PKCS#7 padding of up to `block` bytes. All bytes that could be padding are compared
 * whatever their values, so the time taken does not tell where a bad one was.
 */
function unpad(name: string, data: Buffer, block: number): Buffer {
  const count = data.at(-1) ?? 0;
  const window = Math.min(block, data.length);
  let diff = 0;
  for (let i = 1; i <= window; i++) {
    const inPadding = (i - count - 1) >>> 31; // 1 while i <= count
    diff |= inPadding * ((data[data.length - i] ?? 0) ^ count);
  }
  if (count === 0 || count > window || diff !== 0) {
    throw new BuiltinError(name, 'decryption failed (wrong key or IV, or the data is corrupted)');
  }
  return data.subarray(0, data.length - count);
}

function paddingBlock(padding: Padding): number | null {
  if (padding.kind === 'pkcs7') return BLOCK_BYTES;
  return padding.kind === 'block' ? padding.block : null;
}

interface BlockCipherCall {
  /** OpenSSL cipher without the mode: aes-128, aes-192, aes-256 or sm4. */
  algorithm: string;
  mode: 'cbc' | 'ecb';
  key: KeyObject;
  iv: Buffer | null;
  padding: Padding;
}

const ZERO_BLOCK = Buffer.alloc(BLOCK_BYTES);

/**
 * A long-lived OpenSSL context for one key, mode and direction, fed whole blocks without
 * padding. Node builds a new cipher object, and OpenSSL a new context, on every createCipheriv:
 * 10-30 us inside a sandbox run, most of the seed script's budget; an update on a live context
 * costs a couple of microseconds. ECB keeps no state between calls. CBC carries the last
 * ciphertext block over as its chaining state S, so a message with its own IV is fed with the
 * first block corrected: E((P1 ^ IV ^ S) ^ S) = E(P1 ^ IV) on the way in, and D(C1) ^ S ^ S ^ IV
 * on the way out. The cipher itself is OpenSSL's; tests compare every result with node:crypto's
 * fresh-context CBC.
 */
class BlockStream {
  readonly #cipher: Cipheriv | Decipheriv;
  readonly #encrypting: boolean;
  readonly #chained: boolean;
  /** The last ciphertext block fed through (CBC's chaining state S), updated in place. */
  readonly #chain = Buffer.alloc(BLOCK_BYTES);

  constructor(call: BlockCipherCall, encrypting: boolean) {
    const name = `${call.algorithm}-${call.mode}`;
    const iv = call.mode === 'cbc' ? ZERO_BLOCK : null;
    this.#cipher = encrypting ? createCipheriv(name, call.key, iv) : createDecipheriv(name, call.key, iv);
    this.#cipher.setAutoPadding(false);
    this.#encrypting = encrypting;
    this.#chained = call.mode === 'cbc';
  }

  /**
   * Encrypts or decrypts `blocks` (a multiple of 16 bytes) with `iv` (CBC only). `blocks` belongs
   * to this call (every argument arrives as a fresh copy) and may be changed.
   */
  run(blocks: Buffer, iv: Buffer | null): Buffer {
    if (!this.#chained || iv === null) return this.#cipher.update(blocks);
    if (this.#encrypting) {
      xorFirstBlock(blocks, iv, this.#chain);
      const out = this.#cipher.update(blocks);
      out.copy(this.#chain, 0, out.length - BLOCK_BYTES);
      return out;
    }
    const out = this.#cipher.update(blocks);
    xorFirstBlock(out, iv, this.#chain);
    blocks.copy(this.#chain, 0, blocks.length - BLOCK_BYTES);
    return out;
  }
}

function xorFirstBlock(target: Buffer, a: Buffer, b: Buffer): void {
  for (let i = 0; i < BLOCK_BYTES; i++) target[i] = (target[i] ?? 0) ^ (a[i] ?? 0) ^ (b[i] ?? 0);
}

const STREAM_IDS = { cbc: ['cbc:decrypt', 'cbc:encrypt'], ecb: ['ecb:decrypt', 'ecb:encrypt'] } as const;

/** Runs `blocks` through the key's live context; a context that ever fails is dropped. */
function streamBlocks(
  ctx: BuiltinContext,
  call: BlockCipherCall,
  encrypting: boolean,
  blocks: Buffer,
): Buffer {
  let streams = ctx.blockStreams.get(call.key);
  if (streams === undefined) {
    streams = new Map();
    ctx.blockStreams.set(call.key, streams);
  }
  const id = STREAM_IDS[call.mode][encrypting ? 1 : 0];
  let stream = streams.get(id);
  if (stream === undefined) {
    stream = new BlockStream(call, encrypting);
    streams.set(id, stream);
  }
  try {
    return stream.run(blocks, call.iv);
  } catch (err) {
    streams.delete(id);
    throw err;
  }
}

function blockEncrypt(name: string, call: BlockCipherCall, ctx: BuiltinContext, value: unknown): Buffer {
  const block = paddingBlock(call.padding);
  if (block !== null) return streamBlocks(ctx, call, true, paddedBytes(name, value, block));
  const data = bytesArg(name, 'data', value);
  if (data.length % BLOCK_BYTES !== 0) {
    throw new BuiltinError(
      name,
      `with padding 'none' the data must be a multiple of 16 bytes, got ${data.length}`,
    );
  }
  return data.length === 0 ? data : streamBlocks(ctx, call, true, data);
}

/**
 * The data with PKCS#7 padding to `block` bytes (16 for PKCS#5/7, 32 for WeCom), in a new buffer;
 * text is encoded straight into it.
 */
function paddedBytes(name: string, value: unknown, block: number): Buffer {
  const data = typeof value === 'string' ? null : bytesArg(name, 'data', value);
  const length = data === null ? Buffer.byteLength(value as string, 'utf8') : data.length;
  const count = block - (length % block);
  const padded = Buffer.allocUnsafe(length + count);
  if (data === null) padded.write(value as string, 'utf8');
  else data.copy(padded);
  return padded.fill(count, length);
}

function blockDecrypt(name: string, call: BlockCipherCall, ctx: BuiltinContext, data: Buffer): Buffer {
  if (data.length === 0 || data.length % BLOCK_BYTES !== 0) {
    throw new BuiltinError(
      name,
      `encrypted data must be a non-empty multiple of 16 bytes, got ${data.length}`,
    );
  }
  const plain = streamBlocks(ctx, call, false, data);
  const block = paddingBlock(call.padding);
  return block === null ? plain : unpad(name, plain, block);
}

function aesCbc(
  ctx: BuiltinContext,
  name: string,
  args: readonly unknown[],
  padding: Padding,
): BlockCipherCall {
  const key = symmetricKey(ctx, name, 'aes', args[0], [16, 24, 32]);
  const iv = exactBytes(name, 'iv', args[2], 16);
  return { algorithm: `aes-${(key.symmetricKeySize ?? 0) * 8}`, mode: 'cbc', key, iv, padding };
}

function sm4(
  ctx: BuiltinContext,
  name: string,
  args: readonly unknown[],
  mode: 'cbc' | 'ecb',
): BlockCipherCall {
  const key = symmetricKey(ctx, name, 'sm4', args[0], [16]);
  const iv = mode === 'cbc' ? exactBytes(name, 'iv', args[2], 16) : null;
  return { algorithm: 'sm4', mode, key, iv, padding: PKCS7 };
}

// ---------------------------------------------------------------------------------------------
// AES-GCM

const GCM_TAG_BYTES = 16;

function gcmCipher(key: KeyObject): CipherGCMTypes {
  const bits = (key.symmetricKeySize ?? 0) * 8;
  return bits === 128 ? 'aes-128-gcm' : bits === 192 ? 'aes-192-gcm' : 'aes-256-gcm';
}

function aesGcmEncrypt(args: readonly unknown[], ctx: BuiltinContext, name: string): Buffer {
  const key = symmetricKey(ctx, name, 'aes', args[0], [16, 24, 32]);
  const plaintext = bytesArg(name, 'plaintext', args[1]);
  const nonce = gcmNonce(name, args[2]);
  const aad = optionalBytesArg(name, 'aad', args[3]);
  const cipher = createCipheriv(gcmCipher(key), key, nonce, {
    authTagLength: GCM_TAG_BYTES,
  });
  if (aad !== undefined) cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function gcmNonce(name: string, value: unknown): Buffer {
  const nonce = bytesArg(name, 'nonce', value);
  if (nonce.length === 0) throw new BuiltinError(name, 'nonce must not be empty (12 bytes is usual)');
  return nonce;
}

function aesGcmDecrypt(args: readonly unknown[], ctx: BuiltinContext, name: string): Buffer {
  const key = symmetricKey(ctx, name, 'aes', args[0], [16, 24, 32]);
  const sealed = bytesArg(name, 'data', args[1]);
  const nonce = gcmNonce(name, args[2]);
  const aad = optionalBytesArg(name, 'aad', args[3]);
  if (sealed.length < GCM_TAG_BYTES) {
    throw new BuiltinError(
      name,
      `data must end with the 16-byte authentication tag, got only ${sealed.length} bytes`,
    );
  }
  const decipher = createDecipheriv(gcmCipher(key), key, nonce, {
    authTagLength: GCM_TAG_BYTES,
  });
  decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  if (aad !== undefined) decipher.setAAD(aad);
  const body = decipher.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch {
    throw new BuiltinError(
      name,
      'authentication tag does not match (wrong key, nonce or aad, or altered data)',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// RSA, SM2

function privateKeyArg(ctx: BuiltinContext, name: string, value: unknown): KeyObject {
  const pem = textArg(name, 'private key PEM', value);
  try {
    return ctx.keys.get(`private:${pem}`, () => readPrivateKey(pem));
  } catch (err) {
    if (err instanceof PemError) throw new BuiltinError(name, `cannot read the private key: ${err.message}`);
    throw err;
  }
}

function publicKeyArg(ctx: BuiltinContext, name: string, value: unknown): KeyObject {
  const pem = textArg(name, 'public key PEM', value);
  try {
    return ctx.keys.get(`public:${pem}`, () => readPublicKey(pem));
  } catch (err) {
    if (err instanceof PemError) throw new BuiltinError(name, `cannot read the public key: ${err.message}`);
    throw err;
  }
}

/**
 * Larger RSA keys are refused: signing with a made-up 16,384-bit key holds the event loop (every
 * request on the node) for about a second before the run's time limit can be checked.
 */
export const MAX_RSA_BITS = 4096;

function requireRsa(name: string, key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'rsa') {
    throw new BuiltinError(name, `expected an RSA key, got ${key.asymmetricKeyType ?? 'an unsupported'} key`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits > MAX_RSA_BITS) {
    throw new BuiltinError(name, `the RSA key has ${bits} bits; at most ${MAX_RSA_BITS} are supported`);
  }
  return key;
}

// 1.2.156.10197.1.301, the SM2 curve. OpenSSL 3 loads such PEM keys as its own SM2 key type, which
// Node reports with no asymmetricKeyType; an `ec` key on another curve would silently do ECDSA.
const SM2_CURVE_OID = Buffer.from('06082a811ccf5501822d', 'hex');

function requireSm2(name: string, key: KeyObject): KeyObject {
  const spki =
    key.asymmetricKeyType === undefined
      ? (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })
      : undefined;
  if (spki === undefined || !spki.includes(SM2_CURVE_OID)) {
    throw new BuiltinError(name, `expected an SM2 key, got ${key.asymmetricKeyType ?? 'another'} key`);
  }
  return key;
}

/** The signature's bytes; null when it is not base64, which simply fails verification. */
function signatureArg(name: string, value: unknown): Buffer | null {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value !== 'string') {
    throw new BuiltinError(name, `signature must be a base64 string or bytes, got ${describeType(value)}`);
  }
  const compact = value.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/]*={0,2}$/.test(compact) ? Buffer.from(compact, 'base64') : null;
}

function signWith(digest: string, check: (name: string, key: KeyObject) => KeyObject): HostBuiltin {
  return (args, ctx, name) => {
    const key = check(name, privateKeyArg(ctx, name, args[0]));
    return sign(digest, bytesArg(name, 'data', args[1]), key).toString('base64');
  };
}

function verifyWith(digest: string, check: (name: string, key: KeyObject) => KeyObject): HostBuiltin {
  return (args, ctx, name) => {
    const key = check(name, publicKeyArg(ctx, name, args[0]));
    const data = bytesArg(name, 'data', args[1]);
    const signature = signatureArg(name, args[2]);
    if (signature === null) return false;
    try {
      return verify(digest, data, key, signature);
    } catch {
      return false; // a malformed signature is simply not a valid one
    }
  };
}

function rsaOaepEncrypt(args: readonly unknown[], ctx: BuiltinContext, name: string): string {
  const key = requireRsa(name, publicKeyArg(ctx, name, args[0]));
  const data = bytesArg(name, 'data', args[1]);
  const oaepHash = optionsArg(name, args[2])['hash'] ?? 'sha1';
  if (oaepHash !== 'sha1' && oaepHash !== 'sha256') {
    throw new BuiltinError(name, `options.hash must be 'sha1' or 'sha256'`);
  }
  const modulusBytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  const maxBytes = modulusBytes - 2 * (oaepHash === 'sha1' ? 20 : 32) - 2;
  if (data.length > maxBytes) {
    throw new BuiltinError(
      name,
      `data is ${data.length} bytes; this key takes at most ${maxBytes} with OAEP-${oaepHash}`,
    );
  }
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Randomness and secrets

const NONCE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const MAX_NONCE = 1024;

function randomNonce(args: readonly unknown[], _ctx: BuiltinContext, name: string): string {
  const length = args[0] ?? 16;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 1 || length > MAX_NONCE) {
    throw new BuiltinError(name, `length must be an integer from 1 to ${MAX_NONCE}`);
  }
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
      if (byte < 248 && out.length < length) out += NONCE_ALPHABET[byte % 62];
    }
  }
  return out;
}

function readSecret(args: readonly unknown[], ctx: BuiltinContext, name: string): string {
  const secretName = args[0];
  if (typeof secretName !== 'string' || secretName === '') {
    throw new BuiltinError(name, `name must be a non-empty string, got ${describeType(secretName)}`);
  }
  if (Object.hasOwn(ctx.secrets, secretName)) {
    const value = ctx.secrets[secretName];
    if (typeof value === 'string') return value;
  }
  const shown = secretName.length > 100 ? `${secretName.slice(0, 100)}...` : secretName;
  if (ctx.unreadableSecrets?.has(secretName)) {
    throw new BuiltinError(
      name,
      `"${shown}" is set for this provider but cannot be decrypted (bound to another place or altered); set it again`,
      'KG_SECRET_UNREADABLE',
    );
  }
  throw new BuiltinError(name, `"${shown}" is not set for this provider`, 'KG_SECRET_MISSING');
}

// ---------------------------------------------------------------------------------------------
// The table the bootstrap calls into.

/**
 * How the bootstrap checks an argument before calling: a key or data is a string or bytes, `?`
 * marks an optional one, `options` is a plain object, `length` a number and `name` a string.
 */
type ArgSpec = string;
type ReturnKind = 'text' | 'bytes' | 'boolean';

interface HostBuiltinSpec {
  name: string;
  args: readonly ArgSpec[];
  returns: ReturnKind;
  run: HostBuiltin;
}

const aesCbcPkcs5Decrypt: HostBuiltin = (args, ctx, name) =>
  blockDecrypt(name, aesCbc(ctx, name, args, PKCS7), ctx, bytesArg(name, 'data', args[1]));
const sm4CbcDecrypt: HostBuiltin = (args, ctx, name) =>
  blockDecrypt(name, sm4(ctx, name, args, 'cbc'), ctx, bytesArg(name, 'data', args[1]));
const sm4EcbDecrypt: HostBuiltin = (args, ctx, name) =>
  blockDecrypt(name, sm4(ctx, name, args, 'ecb'), ctx, bytesArg(name, 'data', args[1]));

function builtin(
  name: string,
  args: readonly ArgSpec[],
  returns: ReturnKind,
  run: HostBuiltin,
): HostBuiltinSpec {
  return { name, args, returns, run };
}

const KEY_DATA = ['key', 'data'];
const KEY_DATA_IV = ['key', 'data', 'iv'];

/** Script-visible name, arguments, result kind and implementation of every host built-in. */
export const HOST_BUILTINS: readonly HostBuiltinSpec[] = [
  builtin('md5', ['data'], 'text', hashHex('md5')),
  builtin('sha1', ['data'], 'text', hashHex('sha1')),
  builtin('sha256', ['data'], 'text', hashHex('sha256')),
  builtin('sha512', ['data'], 'text', hashHex('sha512')),
  builtin('sm3', ['data'], 'text', hashHex('sm3')),
  builtin('hmac_sha1', KEY_DATA, 'text', hmacHex('sha1')),
  builtin('hmac_sha256', KEY_DATA, 'text', hmacHex('sha256')),
  builtin('hmac_sha512', KEY_DATA, 'text', hmacHex('sha512')),
  builtin('hmac_sm3', KEY_DATA, 'text', hmacHex('sm3')),
  builtin('hmac_sha1_bytes', KEY_DATA, 'bytes', hmacBytes('sha1')),
  builtin('hmac_sha256_bytes', KEY_DATA, 'bytes', hmacBytes('sha256')),
  builtin('hmac_sha512_bytes', KEY_DATA, 'bytes', hmacBytes('sha512')),
  builtin('hmac_sm3_bytes', KEY_DATA, 'bytes', hmacBytes('sm3')),

  builtin('aes_cbc_pkcs5_encrypt', KEY_DATA_IV, 'bytes', (args, ctx, name) =>
    blockEncrypt(name, aesCbc(ctx, name, args, PKCS7), ctx, args[1]),
  ),
  builtin('aes_cbc_pkcs5_decrypt', KEY_DATA_IV, 'text', aesCbcPkcs5Decrypt),
  builtin('aes_cbc_pkcs5_decrypt_bytes', KEY_DATA_IV, 'bytes', aesCbcPkcs5Decrypt),
  builtin('aes_cbc_encrypt', [...KEY_DATA_IV, 'options?'], 'bytes', (args, ctx, name) =>
    blockEncrypt(name, aesCbc(ctx, name, args, paddingOption(name, args[3])), ctx, args[1]),
  ),
  builtin('aes_cbc_decrypt', [...KEY_DATA_IV, 'options?'], 'bytes', (args, ctx, name) =>
    blockDecrypt(
      name,
      aesCbc(ctx, name, args, paddingOption(name, args[3])),
      ctx,
      bytesArg(name, 'data', args[1]),
    ),
  ),
  builtin('aes_gcm_encrypt', ['key', 'plaintext', 'nonce', 'aad?'], 'bytes', aesGcmEncrypt),
  builtin('aes_gcm_decrypt', ['key', 'data', 'nonce', 'aad?'], 'text', aesGcmDecrypt),
  builtin('aes_gcm_decrypt_bytes', ['key', 'data', 'nonce', 'aad?'], 'bytes', aesGcmDecrypt),

  builtin('sm4_cbc_encrypt', KEY_DATA_IV, 'bytes', (args, ctx, name) =>
    blockEncrypt(name, sm4(ctx, name, args, 'cbc'), ctx, args[1]),
  ),
  builtin('sm4_cbc_decrypt', KEY_DATA_IV, 'text', sm4CbcDecrypt),
  builtin('sm4_cbc_decrypt_bytes', KEY_DATA_IV, 'bytes', sm4CbcDecrypt),
  builtin('sm4_ecb_encrypt', KEY_DATA, 'bytes', (args, ctx, name) =>
    blockEncrypt(name, sm4(ctx, name, args, 'ecb'), ctx, args[1]),
  ),
  builtin('sm4_ecb_decrypt', KEY_DATA, 'text', sm4EcbDecrypt),
  builtin('sm4_ecb_decrypt_bytes', KEY_DATA, 'bytes', sm4EcbDecrypt),

  builtin('rsa_sha256_sign', ['pem', 'data'], 'text', signWith('sha256', requireRsa)),
  builtin('rsa_sha256_verify', ['pem', 'data', 'signature'], 'boolean', verifyWith('sha256', requireRsa)),
  builtin('rsa_sha1_sign', ['pem', 'data'], 'text', signWith('sha1', requireRsa)),
  builtin('rsa_sha1_verify', ['pem', 'data', 'signature'], 'boolean', verifyWith('sha1', requireRsa)),
  builtin('rsa_oaep_encrypt', ['pem', 'data', 'options?'], 'text', rsaOaepEncrypt),
  builtin('sm2_sign', ['pem', 'data'], 'text', signWith('sm3', requireSm2)),
  builtin('sm2_verify', ['pem', 'data', 'signature'], 'boolean', verifyWith('sm3', requireSm2)),

  builtin('uuid', [], 'text', () => randomUUID()),
  builtin('nonce', ['length?'], 'text', randomNonce),
  builtin('secret', ['name'], 'text', readSecret),
];

/** What the bootstrap needs to define the host built-ins: [name, argument specs, result kind]. */
export function hostBuiltinManifest(): Array<[string, readonly ArgSpec[], ReturnKind]> {
  return HOST_BUILTINS.map((spec) => [spec.name, spec.args, spec.returns]);
}

/**
 * Runs host built-in number `index` (its place in HOST_BUILTINS). `binaryArgs` has bit i set when
 * argument i is bytes sent as a latin1 string. Every failure comes back as a BuiltinError naming
 * the built-in.
 */
export function callHostBuiltin(
  index: number,
  binaryArgs: number,
  args: unknown[],
  ctx: BuiltinContext,
): HostValue {
  const spec = HOST_BUILTINS[index];
  if (spec === undefined) throw new BuiltinError(`built-in #${index}`, 'no such built-in');
  for (let i = 0; i < args.length; i++) {
    if ((binaryArgs & (1 << i)) !== 0 && typeof args[i] === 'string')
      args[i] = Buffer.from(args[i] as string, 'latin1');
  }
  let result: BuiltinResult;
  try {
    result = spec.run(args, ctx, spec.name);
  } catch (err) {
    if (err instanceof BuiltinError) throw err;
    // node:crypto's messages are OpenSSL codes; they carry no key bytes, but neither do they help.
    const code = (err as { code?: unknown }).code;
    throw new BuiltinError(spec.name, `failed${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  if (!Buffer.isBuffer(result)) return result;
  // Text is decoded here; bytes travel as latin1 and become a Uint8Array in the bootstrap.
  return result.toString(spec.returns === 'text' ? 'utf8' : 'latin1');
}
