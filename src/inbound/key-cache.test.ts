/**
 * The partner-key cache over a real database and key provider (the KMS-protocol test server, and
 * `local`): a live secret that will never decrypt is left out of its key, logged once; a KMS that
 * cannot answer still fails the load (last-known-good, else 503).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../../test/helpers/db.ts';
import { startTestGateway, type TestGateway } from '../../test/helpers/gateway.ts';
import { createTestKey, createTestTenant } from '../../test/helpers/inbound.ts';
import { corruptPartnerCiphertext, corruptPartnerWrappedKey } from '../../test/helpers/secrets.ts';
import { type KmsServer, startKmsServer, transientKmsFaults } from '../../test/kms-server.ts';
import { CLI_ACTOR } from '../cli/context.ts';
import { createKeyProvider, type KeyProvider } from '../secrets/key-provider.ts';
import { createSecretStore, type SecretStore } from '../secrets/secret-store.ts';
import type { ServiceContext } from '../services/context.ts';
import { rotatePartnerKey } from '../services/partner-keys.ts';
import { createPartnerKeyCache } from './key-cache.ts';

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function captureLogger() {
  const lines: Array<{ level: 'warn' | 'error'; obj: Record<string, unknown>; msg: string }> = [];
  return {
    lines,
    errors: () => lines.filter((l) => l.level === 'error'),
    warn: (obj: object, msg: string) =>
      lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj: object, msg: string) =>
      lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
}

describe.each(DIALECTS)('partner-key cache on %s', (dialect) => {
  let gw: TestGateway;
  let kms: KmsServer;
  let keyDir: string;
  let tenantId: string;
  const providers: KeyProvider[] = [];

  beforeAll(async () => {
    gw = await startTestGateway({ dialect, roles: ['admin'] });
    kms = await startKmsServer();
    keyDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-keycache-'));
    tenantId = await createTestTenant(gw.services.ctx, 'kc');
  });
  afterEach(() => kms.up());
  afterAll(async () => {
    for (const p of providers) await p.close();
    await kms?.close();
    await gw?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const awsProvider = (): KeyProvider => {
    const provider = createKeyProvider(
      { provider: 'aws-kms', keyId: kms.keyArn, region: kms.region, endpoint: kms.url },
      { credentials, requestTimeoutMs: 1000, connectTimeoutMs: 500, maxAttempts: 1 },
    );
    providers.push(provider);
    return provider;
  };
  const localProvider = () =>
    createKeyProvider({ provider: 'local', masterKeyFile: path.join(keyDir, 'master.key') });
  /** A node's own secret store: nothing unwrapped yet. */
  const store = (keyProvider: KeyProvider, dataKeyTtlMs = 60_000): SecretStore =>
    createSecretStore({ db: gw.database.db, keyProvider, dataKeyTtlMs });
  /** The admin services, sealing through `secrets`. */
  const admin = (secrets: SecretStore): ServiceContext => ({ ...gw.services.ctx, secrets });

  /** A key with two live secrets, sealed under `keyProvider`. */
  async function rotatedKey(keyProvider: KeyProvider) {
    const ctx = admin(store(keyProvider));
    const first = await createTestKey(ctx, tenantId);
    const second = await rotatePartnerKey(ctx, CLI_ACTOR, { tenant: tenantId, keyId: first.keyId });
    return { keyId: first.keyId, secrets: [first.secret, second.secret] };
  }

  /** What no log line may contain: the secrets, or any stretch of a stored row's sealed columns. */
  async function expectNothingSecret(keyId: string, secrets: string[], logged: unknown) {
    const text = JSON.stringify(logged);
    for (const secret of secrets) expect(text).not.toContain(secret);
    const rows = await gw.database.db
      .selectFrom('partner_key_secrets')
      .selectAll()
      .where('key_id', '=', keyId)
      .execute();
    for (const row of rows) {
      for (const sealed of [row.ciphertext, row.wrapped_key]) {
        expect(text).not.toContain(sealed.slice(8, 32));
        expect(text).not.toContain(Buffer.from(sealed, 'base64').toString('hex').slice(16, 48));
      }
    }
  }

  it.each([
    ['the KMS', awsProvider],
    ['a local master key', localProvider],
  ])(
    'leaves out a secret version that does not decrypt (%s), logs it once, and counts it',
    async (_, provider) => {
      const { keyId, secrets } = await rotatedKey(provider());
      await corruptPartnerCiphertext(gw.database.db, keyId, 2);
      const logger = captureLogger();
      const cache = createPartnerKeyCache({ db: gw.database.db, secrets: store(provider()), logger });

      const key = await cache.get(keyId);
      expect(key?.secrets).toEqual([{ version: 1, secret: secrets[0] }]);
      expect(key?.unreadableSecrets?.map((s) => s.version)).toEqual([2]);
      const logged = (versions: number[], readable: number[]) => ({
        level: 'error',
        msg: 'partner key secrets cannot be decrypted',
        obj: expect.objectContaining({
          tenantId,
          keyId,
          unreadableSecretVersions: versions,
          readableSecretVersions: readable,
          causes: Object.fromEntries(
            versions.map((v) => [v, expect.stringContaining('cannot be decrypted: ')]),
          ),
        }),
      });
      expect(logger.errors()).toEqual([logged([2], [1])]);
      expect(logger.errors()[0]!.obj.causes).toEqual({
        2: expect.stringMatching(/its ciphertext does not authenticate/),
      });
      // The repair names the version: retire-secret without it would retire the good version 1.
      expect(logger.errors()[0]!.obj.reason).toContain(
        `keygate partner-key retire-secret --tenant ${tenantId} ${keyId} --version 2`,
      );
      expect(cache.unreadableCounts()).toEqual([{ tenantId, secrets: 1, keysWithoutReadableSecret: 0 }]);

      // Found again by every load, but not news: no more lines.
      for (let i = 0; i < 3; i++) {
        cache.invalidate(keyId);
        expect((await cache.get(keyId))?.secrets.map((s) => s.version)).toEqual([1]);
      }
      expect(logger.errors()).toHaveLength(1);

      // The other one goes bad too (its wrapped data key, refused): that version is news, and the key
      // has no secret left that verifies.
      await corruptPartnerWrappedKey(gw.database.db, keyId, 1);
      cache.invalidate(keyId);
      const broken = await cache.get(keyId);
      expect(broken?.secrets).toEqual([]);
      expect(broken?.unreadableSecrets?.map((s) => s.version)).toEqual([1, 2]);
      expect(logger.errors()).toEqual([logged([2], [1]), logged([1], [])]);
      expect(logger.errors()[1]!.obj.causes).toEqual({
        1: expect.stringMatching(/the key provider refused its wrapped data key/),
      });
      expect(cache.unreadableCounts()).toEqual([{ tenantId, secrets: 2, keysWithoutReadableSecret: 1 }]);
      cache.invalidate(keyId);
      await cache.get(keyId);
      expect(logger.errors()).toHaveLength(2);
      await expectNothingSecret(keyId, secrets, logger.lines);
    },
  );

  it('forgets the unreadable secrets of a key it evicts: the counts cover the keys it holds', async () => {
    const broken = await rotatedKey(localProvider());
    await corruptPartnerCiphertext(gw.database.db, broken.keyId, 1);
    await corruptPartnerCiphertext(gw.database.db, broken.keyId, 2);
    const healthy = await rotatedKey(localProvider());
    const logger = captureLogger();
    const cache = createPartnerKeyCache({
      db: gw.database.db,
      secrets: store(localProvider()),
      maxEntries: 1,
      logger,
    });
    const counted = [{ tenantId, secrets: 2, keysWithoutReadableSecret: 1 }];

    expect((await cache.get(broken.keyId))?.secrets).toEqual([]);
    expect(cache.unreadableCounts()).toEqual(counted);
    // Another key takes the only place: the evicted key no longer counts.
    expect((await cache.get(healthy.keyId))?.secrets).toHaveLength(2);
    expect(cache.unreadableCounts()).toEqual([]);
    // Loaded again, it counts again, and its secrets are news to this cache again: logged again.
    await cache.get(broken.keyId);
    expect(cache.unreadableCounts()).toEqual(counted);
    expect(logger.errors().map((l) => l.obj.keyId)).toEqual([broken.keyId, broken.keyId]);
  });

  it('still fails the load while the KMS is down: last-known-good, else 503', async () => {
    const { keyId, secrets } = await rotatedKey(awsProvider());
    await corruptPartnerWrappedKey(gw.database.db, keyId, 2);
    const logger = captureLogger();
    // Data keys kept 50 ms, so that a reload after that asks the KMS again.
    const cache = createPartnerKeyCache({ db: gw.database.db, secrets: store(awsProvider(), 50), logger });
    const loaded = await cache.get(keyId);
    expect(loaded?.secrets.map((s) => s.version)).toEqual([1]);

    const faults = transientKmsFaults(kms);
    for (const [fault, start] of faults) {
      start();
      await sleep(80); // the data keys are past their TTL
      const warnings = logger.lines.filter((l) => l.level === 'warn').length;
      cache.invalidate(keyId);
      // The reload fails, and the copy loaded before serves on...
      expect(await cache.get(keyId), fault).toBe(loaded);
      expect(
        logger.lines.filter((l) => l.level === 'warn'),
        fault,
      ).toHaveLength(warnings + 1);
      expect(logger.lines.at(-1), fault).toMatchObject({
        level: 'warn',
        obj: { what: 'partner key', key: keyId, servingLastKnownGood: true },
      });
      // ...and a node that never loaded the key answers 503, as before: not a refusal of one secret.
      const fresh = createPartnerKeyCache({ db: gw.database.db, secrets: store(awsProvider()), logger });
      await expect(fresh.get(keyId), fault).rejects.toMatchObject({ code: 'KG_NOT_READY', status: 503 });
      kms.up();
    }
    // The refused version was logged once, when first found; the outages added no error line.
    expect(logger.errors()).toHaveLength(1);
    expect(cache.unreadableCounts()).toContainEqual({ tenantId, secrets: 1, keysWithoutReadableSecret: 0 });
    await expectNothingSecret(keyId, secrets, logger.lines);
  });
});
