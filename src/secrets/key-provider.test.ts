import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KmsServer, startKmsServer, transientKmsFaults } from '../../test/kms-server.ts';
import { ConfigError } from '../config.ts';
import { createKeyProvider, DataKeyRefusedError, type KeyProvider } from './key-provider.ts';

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('local key provider', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-kp-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const local = (file: string) => createKeyProvider({ provider: 'local', masterKeyFile: file });

  it('creates a 0600 master key file (and its directory) on first start and reuses it on restart', async () => {
    const file = path.join(dir, 'nested', 'data', 'master.key');
    const first = local(file);
    await first.check();
    const stat = statSync(file);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.size).toBe(32);

    const dataKey = await first.generateDataKey();
    expect(dataKey.plaintext).toHaveLength(32);
    expect(dataKey.keyId).toMatch(/^local:[0-9a-f]{16}$/);
    expect(dataKey.wrapped.equals(dataKey.plaintext)).toBe(false);

    const restarted = local(file);
    await restarted.check();
    expect((await restarted.decryptDataKey(dataKey.wrapped, dataKey.keyId)).equals(dataKey.plaintext)).toBe(
      true,
    );
    expect(statSync(file).mtimeMs).toBe(stat.mtimeMs);
  });

  it('lets concurrent first starts agree on one key', async () => {
    const file = path.join(dir, 'race', 'master.key');
    const providers = Array.from({ length: 5 }, () => local(file));
    const keys = await Promise.all(providers.map((p) => p.generateDataKey()));
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
  });

  it('refuses a key file readable by others, naming the file', async () => {
    const file = path.join(dir, 'open.key');
    writeFileSync(file, Buffer.alloc(32, 7), { mode: 0o644 });
    chmodSync(file, 0o644);
    const err = await failure(local(file).check());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(file);
    expect(err.message).toContain('0644');
    await expect(local(file).generateDataKey()).rejects.toThrow(file);

    chmodSync(file, 0o400); // narrower than 0600 is fine
    await expect(local(file).check()).resolves.toBeUndefined();
  });

  it('refuses a key file of the wrong size, naming the file', async () => {
    const file = path.join(dir, 'short.key');
    writeFileSync(file, Buffer.alloc(31, 1), { mode: 0o600 });
    await expect(local(file).check()).rejects.toThrow(`${file} holds 31 bytes, expected 32`);
  });

  it('says so when a data key was wrapped under another master key', async () => {
    const a = local(path.join(dir, 'a.key'));
    const b = local(path.join(dir, 'b.key'));
    const dataKey = await a.generateDataKey();
    const otherMaster = await failure(b.decryptDataKey(dataKey.wrapped, dataKey.keyId));
    expect(otherMaster).toBeInstanceOf(DataKeyRefusedError);
    expect(otherMaster.message).toContain('was the master key file replaced');
    const tampered = Buffer.from(dataKey.wrapped);
    tampered[20]! ^= 1;
    const altered = await failure(a.decryptDataKey(tampered, dataKey.keyId));
    expect(altered).toBeInstanceOf(DataKeyRefusedError);
    expect(altered.message).toContain('does not unwrap');
    await expect(a.decryptDataKey(Buffer.alloc(0), dataKey.keyId)).rejects.toBeInstanceOf(
      DataKeyRefusedError,
    );
  });

  it('does not call an unreadable master key file a refusal: that may be fixed', async () => {
    const file = path.join(dir, 'fixable.key');
    const provider = local(file);
    const dataKey = await provider.generateDataKey();
    const failing = local(file);
    chmodSync(file, 0o644);
    const err = await failure(failing.decryptDataKey(dataKey.wrapped, dataKey.keyId));
    expect(err).not.toBeInstanceOf(DataKeyRefusedError);
    expect(err.message).toContain('0644');
    chmodSync(file, 0o600);
    expect((await failing.decryptDataKey(dataKey.wrapped, dataKey.keyId)).equals(dataKey.plaintext)).toBe(
      true,
    );
  });
});

describe('aws-kms key provider against the KMS-protocol server', () => {
  let server: KmsServer;
  const providers: KeyProvider[] = [];
  const awsKms = (keyId: string, options: { requestTimeoutMs?: number; endpoint?: string } = {}) => {
    const provider = createKeyProvider(
      { provider: 'aws-kms', keyId, region: server.region, endpoint: options.endpoint ?? server.url },
      { credentials, requestTimeoutMs: options.requestTimeoutMs ?? 2000, maxAttempts: 1 },
    );
    providers.push(provider);
    return provider;
  };
  beforeAll(async () => {
    server = await startKmsServer();
  });
  afterEach(() => {
    server.up();
    server.slow(0);
  });
  afterAll(async () => {
    for (const p of providers) p.close();
    await server.close();
  });

  it('generates and unwraps data keys with GenerateDataKey and Decrypt', async () => {
    const provider = awsKms(server.keyArn);
    expect(provider.name).toBe('aws-kms');
    server.resetCalls();
    const dataKey = await provider.generateDataKey();
    expect(dataKey.keyId).toBe(server.keyArn);
    expect(dataKey.plaintext).toHaveLength(32);
    expect((await provider.decryptDataKey(dataKey.wrapped, dataKey.keyId)).equals(dataKey.plaintext)).toBe(
      true,
    );
    expect(server.calls).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 1 });
    await provider.check();
  });

  it('start-up check names KMS_KEY_ID for an unknown key', async () => {
    const missing = 'arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555';
    const err = await failure(awsKms(missing).check());
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`KMS_KEY_ID: key ${missing} not found`);
  });

  it('start-up check names AWS_ENDPOINT_URL_KMS when the KMS cannot be reached', async () => {
    server.down();
    await expect(awsKms(server.keyArn).check()).rejects.toThrow(
      `AWS_ENDPOINT_URL_KMS: cannot reach ${server.url}`,
    );
  });

  it('gives up on a slow KMS after the request timeout', async () => {
    server.slow(3000);
    const started = performance.now();
    await expect(awsKms(server.keyArn, { requestTimeoutMs: 300 }).generateDataKey()).rejects.toThrow(
      'AWS_ENDPOINT_URL_KMS: cannot reach',
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('refuses a data key wrapped under another key, or altered, as a DataKeyRefusedError', async () => {
    const provider = awsKms(server.keyArn);
    const dataKey = await provider.generateDataKey();
    const other = server.createKey();
    const incorrectKey = await failure(provider.decryptDataKey(dataKey.wrapped, other));
    expect(incorrectKey).toBeInstanceOf(DataKeyRefusedError);
    expect(incorrectKey.message).toBe(
      `KMS Decrypt: the wrapped data key does not belong to key ${other} or was altered (IncorrectKeyException)`,
    );
    const tampered = Buffer.from(dataKey.wrapped);
    tampered[tampered.length - 1]! ^= 1;
    const invalid = await failure(provider.decryptDataKey(tampered, dataKey.keyId));
    expect(invalid).toBeInstanceOf(DataKeyRefusedError);
    expect(invalid.message).toContain('(InvalidCiphertextException)');
    await expect(provider.decryptDataKey(Buffer.alloc(0), dataKey.keyId)).rejects.toBeInstanceOf(
      DataKeyRefusedError,
    );
  });

  it('does not call a KMS that is down, slow, throttling or failing a refusal', async () => {
    const provider = awsKms(server.keyArn, { requestTimeoutMs: 300 });
    const dataKey = await provider.generateDataKey();
    const faults: Array<[string, () => void]> = [
      ...transientKmsFaults(server),
      ['slow', () => server.slow(3000)],
    ];
    for (const [fault, start] of faults) {
      start();
      const err = await failure(provider.decryptDataKey(dataKey.wrapped, dataKey.keyId));
      expect(err, fault).toBeInstanceOf(Error);
      expect(err, fault).not.toBeInstanceOf(DataKeyRefusedError);
      server.up();
      server.slow(0);
    }
    expect((await provider.decryptDataKey(dataKey.wrapped, dataKey.keyId)).equals(dataKey.plaintext)).toBe(
      true,
    );
  });
});
