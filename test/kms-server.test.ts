import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type KmsServer, startKmsServer } from './kms-server.ts';

describe('KMS-protocol test server', () => {
  let server: KmsServer;
  let client: KMSClient;
  beforeAll(async () => {
    server = await startKmsServer();
    client = new KMSClient({
      region: server.region,
      endpoint: server.url,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
      maxAttempts: 1,
      requestHandler: { requestTimeout: 2000, throwOnRequestTimeout: true },
    });
  });
  afterAll(async () => {
    client.destroy();
    await server.close();
  });
  beforeEach(() => {
    server.up();
    server.slow(0);
    server.resetCalls();
  });

  it('generates a data key that Decrypt gives back, through the real SDK', async () => {
    const keyId = server.keyArn.split('/')[1]!; // a bare key id works as well as the ARN
    const generated = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    expect(generated.KeyId).toBe(server.keyArn);
    expect(generated.Plaintext).toHaveLength(32);
    const decrypted = await client.send(
      new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, KeyId: server.keyArn }),
    );
    expect(Buffer.from(decrypted.Plaintext!).equals(Buffer.from(generated.Plaintext!))).toBe(true);
    expect(decrypted.KeyId).toBe(server.keyArn);
    expect(server.calls).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 1 });
  });

  it('encrypts and decrypts with an encryption context that must match', async () => {
    const context = { tenant: 't1', purpose: 'test' };
    const { CiphertextBlob } = await client.send(
      new EncryptCommand({
        KeyId: server.keyArn,
        Plaintext: Buffer.from('hello'),
        EncryptionContext: context,
      }),
    );
    const out = await client.send(
      new DecryptCommand({ CiphertextBlob, EncryptionContext: { purpose: 'test', tenant: 't1' } }),
    );
    expect(Buffer.from(out.Plaintext!).toString()).toBe('hello');
    await expect(
      client.send(
        new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 't2', purpose: 'test' } }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidCiphertextException' });
    const other = server.createKey();
    await expect(
      client.send(new DecryptCommand({ CiphertextBlob, KeyId: other, EncryptionContext: context })),
    ).rejects.toMatchObject({ name: 'IncorrectKeyException' });
    expect(server.calls.Encrypt).toBe(1);
    expect(server.calls.Decrypt).toBe(3);
  });

  it('answers unknown keys with the AWS error shape', async () => {
    const missing = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000';
    await expect(
      client.send(new GenerateDataKeyCommand({ KeyId: missing, KeySpec: 'AES_256' })),
    ).rejects.toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 400 } });

    const res = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TrentService.GenerateDataKey',
        authorization: 'AWS4-HMAC-SHA256 Credential=x',
      },
      body: JSON.stringify({ KeyId: missing, KeySpec: 'AES_256' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await res.json()).toEqual({
      __type: 'NotFoundException',
      message: `Key '${missing}' does not exist`,
    });
  });

  it('requires the Authorization header and a known operation', async () => {
    const call = (headers: Record<string, string>) =>
      fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.1', ...headers },
        body: '{}',
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect(await call({ 'x-amz-target': 'TrentService.Decrypt' })).toMatchObject({
      status: 400,
      body: { __type: 'MissingAuthenticationTokenException' },
    });
    expect(await call({ 'x-amz-target': 'TrentService.Sign', authorization: 'x' })).toMatchObject({
      status: 400,
      body: { __type: 'UnknownOperationException' },
    });
  });

  it('goes down and comes back up', async () => {
    server.down();
    const err = await client
      .send(new GenerateDataKeyCommand({ KeyId: server.keyArn, KeySpec: 'AES_256' }))
      .catch((e: unknown) => e as { $metadata?: { httpStatusCode?: number } });
    expect(err).toBeInstanceOf(Error);
    expect(err.$metadata?.httpStatusCode).toBeUndefined();
    expect(server.calls.GenerateDataKey).toBe(0);
    server.up();
    await client.send(new GenerateDataKeyCommand({ KeyId: server.keyArn, KeySpec: 'AES_256' }));
    expect(server.calls.GenerateDataKey).toBe(1);
  });

  it('answers slowly when told to', async () => {
    server.slow(300);
    const started = performance.now();
    await client.send(new GenerateDataKeyCommand({ KeyId: server.keyArn, KeySpec: 'AES_256' }));
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });
});
