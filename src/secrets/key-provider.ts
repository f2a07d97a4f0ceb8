/**
 * Key providers wrap and unwrap data keys: `local` (a 256-bit master key file, the embedded
 * default) and `aws-kms` (GenerateDataKey / Decrypt through @aws-sdk/client-kms).
 * Errors name the setting to fix and never carry key material. An unwrap that the provider
 * refuses for good is a DataKeyRefusedError; any other failure may pass (KMS down, slow,
 * throttled, failing).
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { type Config, ConfigError } from '../config.ts';
import { bindingAad, decryptGcm, encryptGcm } from './envelope.ts';

export interface DataKey {
  /** 32 bytes; never logged, never stored. */
  plaintext: Buffer;
  /** The data key as wrapped by the provider; stored beside the values it encrypts. */
  wrapped: Buffer;
  /** Which master key wrapped it (a KMS key ARN, or `local:<fingerprint>`). */
  keyId: string;
}

/**
 * The key provider answered and refused to unwrap this data key: the wrapped bytes were altered,
 * or they belong to another master key. Asking again gets the same answer, so it is a fault of
 * the values sealed under it, not of the key provider.
 */
export class DataKeyRefusedError extends Error {
  override name = 'DataKeyRefusedError';
}

export interface KeyProvider {
  readonly name: 'local' | 'aws-kms';
  generateDataKey(): Promise<DataKey>;
  /**
   * Throws DataKeyRefusedError when the provider says the wrapped key is not valid, and any
   * other error when it could not say (unreachable, slow, throttled, failing, misconfigured).
   */
  decryptDataKey(wrapped: Buffer, keyId: string): Promise<Buffer>;
  /**
   * Start-up check: makes sure keys can be generated and unwrapped. Throws a ConfigError whose
   * message names the bad setting (e.g. "KMS_KEY_ID: key arn:... not found").
   */
  check(): Promise<void>;
  /** Releases the KMS client's sockets (no-op for `local`). */
  close(): void;
}

/** Knobs for `aws-kms`; production uses the defaults and the SDK's credential chain. */
export interface AwsKmsOptions {
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  maxAttempts?: number;
}

const DATA_KEY_BYTES = 32;

export function createKeyProvider(kms: Config['kms'], options: AwsKmsOptions = {}): KeyProvider {
  return kms.provider === 'local'
    ? createLocalKeyProvider(kms.masterKeyFile)
    : createAwsKmsKeyProvider(kms, options);
}

// ---------------------------------------------------------------------------------------------
// local

/** A master key in a file of exactly 32 bytes, mode 0600 or narrower, created on first use. */
export function createLocalKeyProvider(masterKeyFile: string): KeyProvider {
  let master: Promise<{ key: Buffer; keyId: string }> | undefined;
  const load = () => {
    if (!master) {
      const loading = loadOrCreateMasterKey(masterKeyFile).then((key) => ({ key, keyId: localKeyId(key) }));
      // A failed load (bad permissions, say) is retried on the next call, after the operator fixes it.
      loading.catch(() => {
        if (master === loading) master = undefined;
      });
      master = loading;
    }
    return master;
  };
  const wrapAad = (keyId: string) => bindingAad('keygate:data-key:v1', keyId);

  return {
    name: 'local',
    async generateDataKey() {
      const { key, keyId } = await load();
      const plaintext = randomBytes(DATA_KEY_BYTES);
      return { plaintext, wrapped: encryptGcm(key, plaintext, wrapAad(keyId)), keyId };
    },
    async decryptDataKey(wrapped, keyId) {
      const current = await load();
      // This process holds one master key and never another: a key wrapped under any other one
      // will not unwrap here however often it is asked.
      if (keyId !== current.keyId) {
        throw new DataKeyRefusedError(
          `data key was wrapped under master key ${keyId}, but ${masterKeyFile} holds ${current.keyId} (was the master key file replaced?)`,
        );
      }
      try {
        return decryptGcm(current.key, wrapped, wrapAad(keyId));
      } catch {
        throw new DataKeyRefusedError(
          `data key does not unwrap under the master key in ${masterKeyFile} (altered?)`,
        );
      }
    },
    async check() {
      try {
        await load();
      } catch (err) {
        throw new ConfigError((err as Error).message, { cause: err });
      }
    },
    close() {},
  };
}

async function loadOrCreateMasterKey(file: string): Promise<Buffer> {
  try {
    return await readMasterKey(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // Write a temporary file, then link it into place: link() fails if another process won the
    // race, and nobody ever sees a half-written key.
    const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(randomBytes(DATA_KEY_BYTES));
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(temp);
    }
  } catch (err) {
    throw new Error(`KEYGATE_DATA_DIR: cannot create master key file ${file} (${errnoOf(err)})`, {
      cause: err,
    });
  }
  return readMasterKey(file);
}

async function readMasterKey(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`KEYGATE_DATA_DIR: master key file ${file} is not a regular file`);
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new Error(
        `KEYGATE_DATA_DIR: master key file ${file} has permissions ${mode}; refusing to use a key others can read (chmod 600 ${file})`,
      );
    }
    if (stat.size !== DATA_KEY_BYTES) {
      throw new Error(
        `KEYGATE_DATA_DIR: master key file ${file} holds ${stat.size} bytes, expected ${DATA_KEY_BYTES} (a 256-bit key)`,
      );
    }
    const key = await handle.readFile();
    if (key.length !== DATA_KEY_BYTES)
      throw new Error(`KEYGATE_DATA_DIR: master key file ${file} changed while read`);
    return key;
  } finally {
    await handle.close();
  }
}

/** A non-secret fingerprint of the master key, stored with each wrapped data key. */
function localKeyId(key: Buffer): string {
  return `local:${createHash('sha256').update('keygate:master-key-id:v1\0').update(key).digest('hex').slice(0, 16)}`;
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

// ---------------------------------------------------------------------------------------------
// aws-kms

/** Logged in CloudTrail with every call and required again by Decrypt. */
const ENCRYPTION_CONTEXT = { 'keygate:purpose': 'data-key' };

export function createAwsKmsKeyProvider(
  kms: Extract<Config['kms'], { provider: 'aws-kms' }>,
  { credentials, connectTimeoutMs = 1000, requestTimeoutMs = 2000, maxAttempts = 2 }: AwsKmsOptions = {},
): KeyProvider {
  const client = new KMSClient({
    region: kms.region,
    ...(kms.endpoint ? { endpoint: kms.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts,
    // Short timeouts: a hung KMS must fail fast so the last-known-good copy keeps serving.
    requestHandler: {
      connectionTimeout: connectTimeoutMs,
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  const where = kms.endpoint
    ? `AWS_ENDPOINT_URL_KMS: cannot reach ${kms.endpoint}`
    : `AWS_REGION: cannot reach KMS in region ${kms.region}`;

  const describe = (err: unknown, operation: string, keyId: string, setting: string): Error => {
    const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
    const name = e.name ?? 'Error';
    let message: string;
    if (name === 'CredentialsProviderError') {
      message =
        'AWS credentials: none found (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or a role)';
    } else if (e.$metadata?.httpStatusCode === undefined) {
      message = `${where} (${e.code ?? name})`;
    } else if (name === 'NotFoundException') {
      message = `${setting}key ${keyId} not found`;
    } else if (name === 'DisabledException' || name === 'KMSInvalidStateException') {
      message = `${setting}key ${keyId} is disabled or pending deletion (${name})`;
    } else if (name === 'AccessDeniedException') {
      message = `${setting}access to key ${keyId} denied for ${operation} (${name})`;
    } else if (name === 'UnrecognizedClientException' || name === 'InvalidSignatureException') {
      message = `AWS credentials: rejected by KMS (${name})`;
    } else if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException') {
      // KMS read the blob and refused it; anything else (throttling, 5xx, timeouts) may pass.
      return new DataKeyRefusedError(
        `KMS ${operation}: the wrapped data key does not belong to key ${keyId} or was altered (${name})`,
        { cause: err },
      );
    } else {
      message = `KMS ${operation} with key ${keyId} failed (${name}, HTTP ${e.$metadata.httpStatusCode})`;
    }
    return new Error(message, { cause: err });
  };

  const provider: KeyProvider = {
    name: 'aws-kms',
    async generateDataKey() {
      let out: { Plaintext?: Uint8Array; CiphertextBlob?: Uint8Array; KeyId?: string };
      try {
        out = await client.send(
          new GenerateDataKeyCommand({
            KeyId: kms.keyId,
            KeySpec: 'AES_256',
            EncryptionContext: ENCRYPTION_CONTEXT,
          }),
        );
      } catch (err) {
        throw describe(err, 'GenerateDataKey', kms.keyId, 'KMS_KEY_ID: ');
      }
      if (out.Plaintext?.length !== DATA_KEY_BYTES || !out.CiphertextBlob?.length) {
        throw new Error(`KMS GenerateDataKey with key ${kms.keyId} returned a malformed answer`);
      }
      return {
        plaintext: Buffer.from(out.Plaintext),
        wrapped: Buffer.from(out.CiphertextBlob),
        keyId: out.KeyId ?? kms.keyId,
      };
    },
    async decryptDataKey(wrapped, keyId) {
      // KMS would answer ValidationException, which reads like a fault of the request.
      if (wrapped.length === 0) throw new DataKeyRefusedError('KMS Decrypt: the wrapped data key is empty');
      let out: { Plaintext?: Uint8Array };
      try {
        out = await client.send(
          new DecryptCommand({
            CiphertextBlob: wrapped,
            KeyId: keyId,
            EncryptionContext: ENCRYPTION_CONTEXT,
          }),
        );
      } catch (err) {
        throw describe(err, 'Decrypt', keyId, keyId === kms.keyId ? 'KMS_KEY_ID: ' : 'KMS: ');
      }
      if (out.Plaintext?.length !== DATA_KEY_BYTES) {
        throw new Error(`KMS Decrypt with key ${keyId} returned a malformed answer`);
      }
      return Buffer.from(out.Plaintext);
    },
    async check() {
      try {
        const { plaintext, wrapped, keyId } = await provider.generateDataKey();
        const unwrapped = await provider.decryptDataKey(wrapped, keyId);
        if (!unwrapped.equals(plaintext))
          throw new Error(`KMS_KEY_ID: key ${kms.keyId} did not round-trip a data key`);
      } catch (err) {
        throw new ConfigError((err as Error).message, { cause: err });
      }
    },
    close() {
      client.destroy();
    },
  };
  return provider;
}
