import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KyselyPlugin } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../../test/helpers/db.ts';
import { corruptCiphertext, corruptWrappedKey } from '../../test/helpers/secrets.ts';
import { startTcpProxy, type TcpProxy } from '../../test/helpers/tcp-proxy.ts';
import { type KmsServer, startKmsServer, transientKmsFaults } from '../../test/kms-server.ts';
import { isKeygateError, type KeygateError, toProblem } from '../errors.ts';
import { createDatabase, type Db } from '../storage/db.ts';
import { createKeyProvider, type KeyProvider } from './key-provider.ts';
import {
  createSecretStore,
  requireSecret,
  type SecretStore,
  type SecretStoreOptions,
} from './secret-store.ts';

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const APP_KEY = 'ak_8f3e2d1c0b9a';
const APP_SECRET = 'as_Qm9vL2Zvby9iYXI_7d6c5b4a39281706';
const AES_KEY = '0123456789abcdef0123456789abcdef';
const RSA_KEY = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Counts the statements sent through a Kysely instance. */
function countQueries(queries: { count: number }): KyselyPlugin {
  return {
    transformQuery(args) {
      queries.count++;
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
}

function captureLogger() {
  const lines: Array<{ level: 'warn' | 'error'; obj: object; msg: string }> = [];
  return {
    lines,
    warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => lines.push({ level: 'error', obj, msg }),
  };
}

function thrown(fn: () => unknown): KeygateError {
  try {
    fn();
  } catch (e) {
    if (isKeygateError(e)) return e;
    throw e;
  }
  throw new Error('expected a throw');
}

async function rejection(promise: Promise<unknown>): Promise<KeygateError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  if (!isKeygateError(err)) throw err;
  return err;
}

/** Nothing a caller or a log reader sees may contain a value. */
function expectNoValues(...things: unknown[]) {
  const text = things
    .map((t) => (t instanceof Error ? `${t.message} ${JSON.stringify(toProblem(t))}` : JSON.stringify(t)))
    .join('\n');
  for (const value of [APP_KEY, APP_SECRET, AES_KEY, RSA_KEY, 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC']) {
    expect(text).not.toContain(value);
  }
}

/** Nor any stored ciphertext or wrapped key, whole or in part. */
function expectNoSealedBytes(
  rows: ReadonlyArray<{ ciphertext: string; wrapped_key: string }>,
  ...things: unknown[]
) {
  const text = JSON.stringify(things);
  for (const row of rows) {
    for (const sealed of [row.ciphertext, row.wrapped_key]) {
      expect(text).not.toContain(sealed.slice(8, 32));
      expect(text).not.toContain(Buffer.from(sealed, 'base64').toString('hex').slice(16, 48));
    }
  }
}

describe.each(DIALECTS)('secret store on %s', (dialect) => {
  let t: TestDatabase;
  let kms: KmsServer;
  let masterKeyFile: string;
  let keyDir: string;
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
    kms = await startKmsServer();
    keyDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-store-'));
    masterKeyFile = path.join(keyDir, 'master.key');
  });
  afterEach(() => {
    kms.up();
    kms.slow(0);
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await kms.close();
    await t.drop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const localProvider = () => createKeyProvider({ provider: 'local', masterKeyFile });
  const awsProvider = (requestTimeoutMs = 1000): KeyProvider => {
    const provider = createKeyProvider(
      { provider: 'aws-kms', keyId: kms.keyArn, region: kms.region, endpoint: kms.url },
      { credentials, requestTimeoutMs, connectTimeoutMs: 500, maxAttempts: 1 },
    );
    cleanups.push(() => provider.close());
    return provider;
  };
  const store = (keyProvider: KeyProvider, extra: Partial<SecretStoreOptions> = {}): SecretStore =>
    createSecretStore({ db: t.db, keyProvider, dataKeyTtlMs: 60_000, ...extra });

  async function setSeedSecrets(s: SecretStore, tenant: string, provider: string) {
    await s.set(tenant, provider, 'AppKey', APP_KEY);
    await s.set(tenant, provider, 'AppSecret', APP_SECRET);
    await s.set(tenant, provider, 'AesKey', AES_KEY, { sensitive: true });
  }

  it('round-trips values, tracks versions and lists metadata only', async () => {
    const s = store(localProvider());
    const first = await s.set('ten_rt', 'acme', 'AppKey', APP_KEY);
    expect(first).toMatchObject({ created: true, version: 1 });
    expect(new Date(first.updatedAt).toISOString()).toBe(first.updatedAt);
    await s.set('ten_rt', 'acme', 'AppSecret', 'old value');
    const second = await s.set('ten_rt', 'acme', 'AppSecret', APP_SECRET);
    expect(second).toMatchObject({ created: false, version: 2 });
    await s.set('ten_rt', 'other', 'Token', 'tok_123456', { sensitive: false });

    const secrets = await s.loadProviderSecrets('ten_rt', 'acme');
    expect({ ...secrets.values }).toEqual({ AppKey: APP_KEY, AppSecret: APP_SECRET });
    expect([...secrets.sensitive]).toEqual(['AppSecret']);
    expect(secrets.mask(`${APP_KEY} ${APP_SECRET}`)).toBe(`${APP_KEY} ****`);
    expect(Object.isFrozen(secrets.values)).toBe(true);
    expect(secrets.values.constructor).toBeUndefined();
    expect(requireSecret(secrets, 'acme', 'AppSecret')).toBe(APP_SECRET);

    const missing = (() => {
      try {
        requireSecret(secrets, 'acme', 'AesKey');
      } catch (e) {
        return e as KeygateError;
      }
    })();
    expect(missing).toMatchObject({
      code: 'KG_SECRET_MISSING',
      message: 'secret "AesKey" of provider "acme" is not set',
    });

    const list = await s.list('ten_rt');
    expect(
      list.map(({ provider, name, sensitive, version }) => ({ provider, name, sensitive, version })),
    ).toEqual([
      { provider: 'acme', name: 'AppKey', sensitive: false, version: 1 },
      { provider: 'acme', name: 'AppSecret', sensitive: true, version: 2 },
      { provider: 'other', name: 'Token', sensitive: false, version: 1 },
    ]);
    expect(await s.list('ten_rt', 'other')).toHaveLength(1);
    expectNoValues(list);

    // Values are encrypted at rest.
    const rows = await t.db.selectFrom('secrets').selectAll().where('tenant_id', '=', 'ten_rt').execute();
    expectNoValues(rows);
    expect(rows.every((r) => r.kms_key_id.startsWith('local:'))).toBe(true);

    // A restarted process (new provider, new store, same master key file) reads them back.
    const restarted = store(localProvider());
    expect((await restarted.loadProviderSecrets('ten_rt', 'acme')).values.AppSecret).toBe(APP_SECRET);

    expect(await s.delete('ten_rt', 'other', 'Token')).toBe(true);
    expect(await s.delete('ten_rt', 'other', 'Token')).toBe(false);
    expect((await s.loadProviderSecrets('ten_rt', 'other')).values).toEqual({});
  });

  it('keeps sensitivity on update unless told otherwise, and validates input without echoing values', async () => {
    const s = store(localProvider());
    await s.set('ten_val', 'acme', 'Region', 'eu-west-1', { sensitive: false });
    await s.set('ten_val', 'acme', 'Region', 'eu-central-1');
    expect((await s.list('ten_val'))[0]).toMatchObject({ name: 'Region', sensitive: false, version: 2 });
    await s.set('ten_val', 'acme', 'Region', 'eu-central-1', { sensitive: true });
    expect((await s.list('ten_val'))[0]).toMatchObject({ sensitive: true, version: 3 });

    const badName = await rejection(s.set('ten_val', 'acme', 'bad name', APP_SECRET));
    expect(badName.code).toBe('KG_VALIDATION_FAILED');
    const tooBig = await rejection(s.set('ten_val', 'acme', 'Big', APP_SECRET.repeat(1000)));
    expect(tooBig.code).toBe('KG_VALIDATION_FAILED');
    expect((await rejection(s.set('ten_val', 'acme', 'Empty', ''))).code).toBe('KG_VALIDATION_FAILED');
    const largest = 'x'.repeat(32 * 1024); // fits the TEXT column on MySQL
    await s.set('ten_val', 'acme', 'Largest', largest);
    expect((await s.loadProviderSecrets('ten_val', 'acme')).values.Largest).toBe(largest);
    expectNoValues(badName, tooBig);
  });

  it('joins a caller transaction and rolls back with it', async () => {
    const s = store(localProvider());
    await expect(
      t.db.transaction().execute(async (trx) => {
        await s.set('ten_trx', 'acme', 'AppKey', APP_KEY, {}, trx);
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await s.list('ten_trx')).toEqual([]);
    await t.db.transaction().execute((trx) => s.set('ten_trx', 'acme', 'AppKey', APP_KEY, {}, trx));
    expect(await s.list('ten_trx')).toHaveLength(1);
  });

  it('sees its own changes at once: set and delete invalidate the cache', async () => {
    const s = store(localProvider(), { cacheTtlMs: 60_000 });
    await s.set('ten_inv', 'acme', 'AppSecret', 'first-value');
    expect((await s.loadProviderSecrets('ten_inv', 'acme')).values.AppSecret).toBe('first-value');
    await s.set('ten_inv', 'acme', 'AppSecret', 'second-value');
    expect((await s.loadProviderSecrets('ten_inv', 'acme')).values.AppSecret).toBe('second-value');

    // Another node's change shows after invalidate() (a config-change notification would call it).
    const otherNode = store(localProvider());
    await otherNode.set('ten_inv', 'acme', 'AppSecret', 'third-value');
    expect((await s.loadProviderSecrets('ten_inv', 'acme')).values.AppSecret).toBe('second-value');
    s.invalidate('ten_inv', 'acme');
    expect((await s.loadProviderSecrets('ten_inv', 'acme')).values.AppSecret).toBe('third-value');
  });

  it('binds each ciphertext to its tenant, provider and name: a copied row does not decrypt', async () => {
    const s = store(localProvider());
    await s.set('ten_aad', 'acme', 'AppSecret', APP_SECRET);
    const row = await t.db
      .selectFrom('secrets')
      .selectAll()
      .where('tenant_id', '=', 'ten_aad')
      .executeTakeFirstOrThrow();
    const copies = [
      { tenant_id: 'ten_aad_other', provider: 'acme', name: 'AppSecret' },
      { tenant_id: 'ten_aad', provider: 'acme2', name: 'AppSecret' },
      { tenant_id: 'ten_aad', provider: 'acme3', name: 'AppSecretCopy' },
    ];
    for (const [i, copy] of copies.entries()) {
      await t.db
        .insertInto('secrets')
        .values({ ...row, ...copy, id: `sec_copy_${i}` })
        .execute();
    }
    const logger = captureLogger();
    const reader = store(localProvider(), { logger });
    expect((await reader.loadProviderSecrets('ten_aad', 'acme')).values.AppSecret).toBe(APP_SECRET);
    for (const copy of copies) {
      const loaded = await reader.loadProviderSecrets(copy.tenant_id, copy.provider);
      expect({ ...loaded.values }).toEqual({});
      expect(loaded.unreadable).toEqual(new Set([copy.name]));
      const err = thrown(() => requireSecret(loaded, copy.provider, copy.name));
      expect(err).toMatchObject({ code: 'KG_SECRET_UNREADABLE', status: 500 });
      expect(err.message).toBe(
        `secret "${copy.name}" of provider "${copy.provider}" cannot be decrypted: it is bound to another place or was altered; set it again`,
      );
      expectNoValues(err);
    }
    expect(logger.lines.map((l) => l.level)).toEqual(['error', 'error', 'error']);
    expectNoValues(logger.lines);
  });

  it('isolates a secret whose ciphertext was altered: the others load, it is named, never valued', async () => {
    const writer = store(localProvider());
    await setSeedSecrets(writer, 'ten_bad', 'acme');
    await writer.set('ten_bad', 'acme', 'RsaKey', RSA_KEY);
    await corruptCiphertext(t.db, 'ten_bad', 'acme', 'RsaKey');

    const logger = captureLogger();
    const reader = store(localProvider(), { logger, cacheTtlMs: 60_000 });
    const loaded = await reader.loadProviderSecrets('ten_bad', 'acme');
    expect({ ...loaded.values }).toEqual({ AppKey: APP_KEY, AppSecret: APP_SECRET, AesKey: AES_KEY });
    expect(loaded.unreadable).toEqual(new Set(['RsaKey']));
    expect(requireSecret(loaded, 'acme', 'AppSecret')).toBe(APP_SECRET);
    expect(loaded.mask(`${APP_SECRET} ${AES_KEY}`)).toBe('**** ****');

    const err = thrown(() => requireSecret(loaded, 'acme', 'RsaKey'));
    expect(err).toMatchObject({ code: 'KG_SECRET_UNREADABLE', status: 500 });
    expect(err.message).toBe(
      'secret "RsaKey" of provider "acme" cannot be decrypted: it is bound to another place or was altered; set it again',
    );
    expect(toProblem(err)).toMatchObject({ provider: 'acme', secret: 'RsaKey' });
    // A secret that is not set is still reported as such.
    expect(thrown(() => requireSecret(loaded, 'acme', 'AesIV')).code).toBe('KG_SECRET_MISSING');

    // Logged at error level when found, naming the secret and what failed.
    const CIPHERTEXT_FAILS = 'its ciphertext does not authenticate under its data key';
    const WRAPPED_KEY_REFUSED = expect.stringMatching(/^the key provider refused its wrapped data key: /);
    const logged = (names: string[], cause: unknown = CIPHERTEXT_FAILS) =>
      expect.objectContaining({
        level: 'error',
        obj: expect.objectContaining({
          tenantId: 'ten_bad',
          provider: 'acme',
          unreadableSecrets: names,
          causes: Object.fromEntries(names.map((name) => [name, cause])),
        }),
        msg: 'provider secrets cannot be decrypted; the others are served',
      });
    expect(logger.lines).toEqual([logged(['RsaKey'])]);
    expect(reader.unreadableCounts()).toEqual([{ tenantId: 'ten_bad', provider: 'acme', count: 1 }]);
    // Not again while it stays as it is: neither a cached read nor the loads that find it again.
    expect(await reader.loadProviderSecrets('ten_bad', 'acme')).toBe(loaded);
    for (let i = 0; i < 3; i++) {
      reader.invalidate('ten_bad', 'acme');
      expect((await reader.loadProviderSecrets('ten_bad', 'acme')).unreadable).toEqual(new Set(['RsaKey']));
    }
    expect(logger.lines).toHaveLength(1);

    // Altered anew (its wrapped key, now): logged anew, once.
    await corruptWrappedKey(t.db, 'ten_bad', 'acme', 'RsaKey');
    for (let i = 0; i < 2; i++) {
      reader.invalidate('ten_bad', 'acme');
      await reader.loadProviderSecrets('ten_bad', 'acme');
    }
    expect(logger.lines).toEqual([logged(['RsaKey']), logged(['RsaKey'], WRAPPED_KEY_REFUSED)]);
    const rows = await t.db.selectFrom('secrets').selectAll().where('tenant_id', '=', 'ten_bad').execute();
    expectNoValues(err, toProblem(err), logger.lines);
    expectNoSealedBytes(rows, logger.lines);

    // Setting it again repairs it; altered after that, it is news again.
    await writer.set('ten_bad', 'acme', 'RsaKey', RSA_KEY);
    reader.invalidate('ten_bad', 'acme');
    const repaired = await reader.loadProviderSecrets('ten_bad', 'acme');
    expect(repaired.values.RsaKey).toBe(RSA_KEY);
    expect(repaired.unreadable).toBeUndefined();
    expect(reader.unreadableCounts()).toEqual([]);
    expect(logger.lines).toHaveLength(2);
    await corruptCiphertext(t.db, 'ten_bad', 'acme', 'RsaKey');
    reader.invalidate('ten_bad', 'acme');
    await reader.loadProviderSecrets('ten_bad', 'acme');
    expect(logger.lines).toEqual([
      logged(['RsaKey']),
      logged(['RsaKey'], WRAPPED_KEY_REFUSED),
      logged(['RsaKey']),
    ]);
  });

  it('isolates a secret whose wrapped data key the local master key refuses: altered, or under another', async () => {
    const writer = store(localProvider());
    await setSeedSecrets(writer, 'ten_wk', 'acme');
    await writer.set('ten_wk', 'acme', 'RsaKey', RSA_KEY);
    await corruptWrappedKey(t.db, 'ten_wk', 'acme', 'RsaKey');
    // A row sealed by a node with another master key file (copied from another installation).
    const otherDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-store-other-'));
    cleanups.push(() => rmSync(otherDir, { recursive: true, force: true }));
    const otherMaster = createKeyProvider({
      provider: 'local',
      masterKeyFile: path.join(otherDir, 'master.key'),
    });
    await store(otherMaster).set('ten_wk', 'acme', 'Region', 'eu-west-1');

    const logger = captureLogger();
    const reader = store(localProvider(), { logger });
    const loaded = await reader.loadProviderSecrets('ten_wk', 'acme');
    expect({ ...loaded.values }).toEqual({ AppKey: APP_KEY, AppSecret: APP_SECRET, AesKey: AES_KEY });
    expect(loaded.unreadable).toEqual(new Set(['RsaKey', 'Region']));
    expect(requireSecret(loaded, 'acme', 'AppSecret')).toBe(APP_SECRET);
    for (const name of ['RsaKey', 'Region']) {
      const err = thrown(() => requireSecret(loaded, 'acme', name));
      expect(err).toMatchObject({ code: 'KG_SECRET_UNREADABLE', status: 500 });
      expect(err.message).toBe(
        `secret "${name}" of provider "acme" cannot be decrypted: it is bound to another place or was altered; set it again`,
      );
      expectNoValues(err, toProblem(err));
    }

    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({
      level: 'error',
      obj: { tenantId: 'ten_wk', provider: 'acme', unreadableSecrets: ['Region', 'RsaKey'] },
    });
    const { causes } = logger.lines[0]!.obj as { causes: Record<string, string> };
    expect(causes.RsaKey).toMatch(/^the key provider refused its wrapped data key: .*\(altered\?\)$/);
    expect(causes.Region).toContain('was the master key file replaced?');
    reader.invalidate('ten_wk', 'acme');
    await reader.loadProviderSecrets('ten_wk', 'acme');
    expect(logger.lines).toHaveLength(1);
    expect(reader.unreadableCounts()).toEqual([{ tenantId: 'ten_wk', provider: 'acme', count: 2 }]);
    const rows = await t.db.selectFrom('secrets').selectAll().where('tenant_id', '=', 'ten_wk').execute();
    expectNoValues(logger.lines);
    expectNoSealedBytes(rows, logger.lines);

    await writer.set('ten_wk', 'acme', 'RsaKey', RSA_KEY);
    reader.invalidate('ten_wk', 'acme');
    const repaired = await reader.loadProviderSecrets('ten_wk', 'acme');
    expect(repaired.values.RsaKey).toBe(RSA_KEY);
    expect(repaired.unreadable).toEqual(new Set(['Region']));
  });

  it('seals other values under the caller binding; one that will never open is unreadable, not unavailable', async () => {
    const s = store(localProvider());
    const sealed = await s.seal('partner-key:pk_1:v1', APP_SECRET);
    expectNoValues(sealed);
    expect(await s.open('partner-key:pk_1:v1', sealed)).toBe(APP_SECRET);
    expect(await store(localProvider()).open('partner-key:pk_1:v1', sealed)).toBe(APP_SECRET);
    const err = await rejection(s.open('partner-key:pk_2:v1', sealed));
    expect(err).toMatchObject({ code: 'KG_SECRET_UNREADABLE', status: 500 });
    expect(err.message).toBe(
      'sealed value cannot be decrypted: its ciphertext does not authenticate under its data key',
    );
    // A wrapped data key the key provider refuses (altered) will not open either, on any node.
    const wrapped = Buffer.from(sealed.wrappedKey, 'base64');
    wrapped[wrapped.length - 8]! ^= 0x01;
    const refused = await rejection(
      store(localProvider()).open('partner-key:pk_1:v1', {
        ...sealed,
        wrappedKey: wrapped.toString('base64'),
      }),
    );
    expect(refused).toMatchObject({ code: 'KG_SECRET_UNREADABLE', status: 500 });
    expect(refused.message).toMatch(
      /^sealed value cannot be decrypted: the key provider refused its wrapped data key: /,
    );
    expectNoValues(err, refused);
    expectNoSealedBytes(
      [{ ciphertext: sealed.ciphertext, wrapped_key: sealed.wrappedKey }],
      err.message,
      refused.message,
    );
    // A provider secret's binding and a sealed value's binding live in different domains.
    await s.set('ten_seal', 'acme', 'AppSecret', APP_SECRET);
    const row = await t.db
      .selectFrom('secrets')
      .selectAll()
      .where('tenant_id', '=', 'ten_seal')
      .executeTakeFirstOrThrow();
    await expect(
      s.open('ten_seal\0acme\0AppSecret', {
        ciphertext: row.ciphertext,
        wrappedKey: row.wrapped_key,
        kmsKeyId: row.kms_key_id,
      }),
    ).rejects.toMatchObject({ code: 'KG_SECRET_UNREADABLE' });
  });

  describe('with aws-kms through the real SDK', () => {
    it('round-trips end to end and caches data keys for dataKeyTtlMs', async () => {
      const writer = store(awsProvider());
      kms.resetCalls();
      await setSeedSecrets(writer, 'ten_kms', 'acme');
      // One data key per tenant per TTL: the three values share it.
      expect(kms.calls.GenerateDataKey).toBe(1);
      const rows = await t.db.selectFrom('secrets').selectAll().where('tenant_id', '=', 'ten_kms').execute();
      expect(new Set(rows.map((r) => r.kms_key_id))).toEqual(new Set([kms.keyArn]));

      kms.resetCalls();
      // The data key's age is read from Date, held still here and moved by the test: the TTL passes
      // when the test says so, not when a busy machine happens to get there.
      const t0 = Date.now();
      vi.setSystemTime(t0);
      try {
        const reader = store(awsProvider(), { dataKeyTtlMs: 300 });
        const concurrent = await Promise.all(
          Array.from({ length: 20 }, () => reader.loadProviderSecrets('ten_kms', 'acme')),
        );
        expect(new Set(concurrent).size).toBe(1); // one load, shared
        expect(concurrent[0]!.values).toEqual({
          AppKey: APP_KEY,
          AppSecret: APP_SECRET,
          AesKey: AES_KEY,
        });
        expect(kms.calls.Decrypt).toBe(1);
        vi.setSystemTime(t0 + 299);
        reader.invalidate('ten_kms', 'acme');
        await reader.loadProviderSecrets('ten_kms', 'acme');
        expect(kms.calls.Decrypt).toBe(1); // within the TTL: no KMS call

        vi.setSystemTime(t0 + 301);
        reader.invalidate('ten_kms', 'acme');
        await reader.loadProviderSecrets('ten_kms', 'acme');
        expect(kms.calls.Decrypt).toBe(2); // the TTL passed: unwrapped again
      } finally {
        vi.useRealTimers();
      }
    });

    it('answers from memory on a hit, without the database or the KMS', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_hot', 'acme');
      const queries = { count: 0 };
      const reader = createSecretStore({
        db: t.db.withPlugin(countQueries(queries)),
        keyProvider: awsProvider(),
        dataKeyTtlMs: 60_000,
        cacheTtlMs: 60_000,
      });
      const first = await reader.loadProviderSecrets('ten_hot', 'acme');
      expect(queries.count).toBeGreaterThan(0); // the first load did read the database
      kms.down();
      kms.resetCalls();
      queries.count = 0;
      for (let i = 0; i < 10_000; i++) {
        expect(await reader.loadProviderSecrets('ten_hot', 'acme')).toBe(first);
      }
      expect(queries.count).toBe(0);
      expect(kms.calls).toEqual({ GenerateDataKey: 0, Encrypt: 0, Decrypt: 0 });
    });

    it('serves the last-known-good copy while the KMS is down, and 503s a provider never loaded', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_lkg', 'acme');
      await setSeedSecrets(writer, 'ten_lkg', 'never-loaded');

      const logger = captureLogger();
      const reader = store(awsProvider(), { cacheTtlMs: 50, dataKeyTtlMs: 50, logger });
      const loaded = await reader.loadProviderSecrets('ten_lkg', 'acme');
      kms.down();
      await sleep(80); // both the cache entry and the data key are past their TTL

      expect(await reader.loadProviderSecrets('ten_lkg', 'acme')).toBe(loaded); // served at once...
      await waitFor(() => logger.lines.length > 0); // ...while the refresh failed in the background
      expect(logger.lines[0]).toMatchObject({
        obj: { tenantId: 'ten_lkg', provider: 'acme', servingLastKnownGood: true },
      });
      expect(JSON.stringify(logger.lines[0])).toContain('AWS_ENDPOINT_URL_KMS: cannot reach');
      expect((await reader.loadProviderSecrets('ten_lkg', 'acme')).values.AppSecret).toBe(APP_SECRET);

      // An explicit invalidate tries a reload, then falls back to the copy.
      reader.invalidate('ten_lkg', 'acme');
      expect((await reader.loadProviderSecrets('ten_lkg', 'acme')).values.AppSecret).toBe(APP_SECRET);

      const err = await rejection(reader.loadProviderSecrets('ten_lkg', 'never-loaded'));
      expect(err.code).toBe('KG_SECRETS_UNAVAILABLE');
      expect(err.status).toBe(503);
      expect(err.message).toContain('"never-loaded"');
      expectNoValues(err, logger.lines);

      // Writes need a data key, so they fail clearly too.
      const writeErr = await rejection(
        store(awsProvider()).set('ten_lkg', 'acme', 'AppSecret', 'new-value-1'),
      );
      expect(writeErr.code).toBe('KG_SECRETS_UNAVAILABLE');

      // Back up: the next refresh picks up changes again.
      kms.up();
      await writer.set('ten_lkg', 'acme', 'AppSecret', 'rotated-secret');
      await sleep(60);
      await expect
        .poll(async () => (await reader.loadProviderSecrets('ten_lkg', 'acme')).values.AppSecret, {
          timeout: 3000,
        })
        .toBe('rotated-secret');
    });

    it('keeps a KMS outage transient when a row is also corrupt: last-known-good, or 503', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_both', 'acme');
      await writer.set('ten_both', 'acme', 'RsaKey', RSA_KEY);
      await corruptCiphertext(t.db, 'ten_both', 'acme', 'RsaKey');

      const logger = captureLogger();
      const reader = store(awsProvider(), { cacheTtlMs: 50, dataKeyTtlMs: 50, logger });
      const loaded = await reader.loadProviderSecrets('ten_both', 'acme');
      expect(loaded.unreadable).toEqual(new Set(['RsaKey']));
      kms.down();
      await sleep(80);

      expect(await reader.loadProviderSecrets('ten_both', 'acme')).toBe(loaded);
      await waitFor(() => logger.lines.some((l) => l.level === 'warn'));
      expect(logger.lines.find((l) => l.level === 'warn')).toMatchObject({
        obj: { provider: 'acme', servingLastKnownGood: true },
      });
      const err = await rejection(store(awsProvider()).loadProviderSecrets('ten_both', 'acme'));
      expect(err).toMatchObject({ code: 'KG_SECRETS_UNAVAILABLE', status: 503 });
      expectNoValues(err, logger.lines);
    });

    it('isolates a secret whose wrapped data key KMS refuses: InvalidCiphertext, IncorrectKey', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_kmswk', 'acme');
      await writer.set('ten_kmswk', 'acme', 'RsaKey', RSA_KEY);
      await corruptWrappedKey(t.db, 'ten_kmswk', 'acme', 'RsaKey');
      // A data key of its own (another store issues another), then the row names another KMS key
      // than the one that wrapped it.
      await store(awsProvider()).set('ten_kmswk', 'acme', 'Region', 'eu-west-1');
      await t.db
        .updateTable('secrets')
        .set({ kms_key_id: kms.createKey() })
        .where('tenant_id', '=', 'ten_kmswk')
        .where('name', '=', 'Region')
        .execute();

      const logger = captureLogger();
      const reader = store(awsProvider(), { logger });
      const loaded = await reader.loadProviderSecrets('ten_kmswk', 'acme');
      expect({ ...loaded.values }).toEqual({ AppKey: APP_KEY, AppSecret: APP_SECRET, AesKey: AES_KEY });
      expect(loaded.unreadable).toEqual(new Set(['RsaKey', 'Region']));
      const err = thrown(() => requireSecret(loaded, 'acme', 'RsaKey'));
      expect(err).toMatchObject({ code: 'KG_SECRET_UNREADABLE', status: 500 });
      expect(err.message).toBe(
        'secret "RsaKey" of provider "acme" cannot be decrypted: it is bound to another place or was altered; set it again',
      );

      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]).toMatchObject({
        level: 'error',
        obj: { tenantId: 'ten_kmswk', provider: 'acme', unreadableSecrets: ['Region', 'RsaKey'] },
      });
      const { causes } = logger.lines[0]!.obj as { causes: Record<string, string> };
      expect(causes.RsaKey).toContain('(InvalidCiphertextException)');
      expect(causes.Region).toContain('(IncorrectKeyException)');
      reader.invalidate('ten_kmswk', 'acme');
      await reader.loadProviderSecrets('ten_kmswk', 'acme');
      expect(logger.lines).toHaveLength(1);
      const rows = await t.db
        .selectFrom('secrets')
        .selectAll()
        .where('tenant_id', '=', 'ten_kmswk')
        .execute();
      expectNoValues(err, toProblem(err), logger.lines);
      expectNoSealedBytes(rows, logger.lines);
    });

    it('keeps a KMS that is down, throttling or failing transient when a wrapped key is also refused', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_kmsdown', 'acme');
      await writer.set('ten_kmsdown', 'acme', 'RsaKey', RSA_KEY);
      await corruptWrappedKey(t.db, 'ten_kmsdown', 'acme', 'RsaKey');

      const logger = captureLogger();
      const reader = store(awsProvider(), { cacheTtlMs: 50, dataKeyTtlMs: 50, logger });
      const loaded = await reader.loadProviderSecrets('ten_kmsdown', 'acme');
      expect(loaded.unreadable).toEqual(new Set(['RsaKey']));
      const faults = transientKmsFaults(kms);
      for (const [fault, start] of faults) {
        start();
        await sleep(80); // the cache entry and the data key are past their TTL
        const warnings = logger.lines.filter((l) => l.level === 'warn').length;
        // Served from the last-known-good copy while a refresh fails in the background...
        expect(await reader.loadProviderSecrets('ten_kmsdown', 'acme'), fault).toBe(loaded);
        await waitFor(() => logger.lines.filter((l) => l.level === 'warn').length > warnings);
        expect(logger.lines.at(-1), fault).toMatchObject({
          level: 'warn',
          obj: { provider: 'acme', servingLastKnownGood: true },
        });
        // ...and a node that never loaded the provider answers 503, not KG_SECRET_UNREADABLE.
        const err = await rejection(store(awsProvider()).loadProviderSecrets('ten_kmsdown', 'acme'));
        expect(err, fault).toMatchObject({ code: 'KG_SECRETS_UNAVAILABLE', status: 503 });
        kms.up();
      }
      expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
      expectNoValues(logger.lines);
    });

    it('serves the last-known-good copy when the KMS is slower than the request timeout', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_slow', 'acme');
      const logger = captureLogger();
      const reader = store(awsProvider(300), { cacheTtlMs: 50, dataKeyTtlMs: 50, logger });
      await reader.loadProviderSecrets('ten_slow', 'acme');
      kms.slow(3000);
      await sleep(80);

      expect((await reader.loadProviderSecrets('ten_slow', 'acme')).values.AppSecret).toBe(APP_SECRET);
      // Served without waiting for the refresh: it has not failed (and logged) yet, and does later.
      expect(logger.lines).toEqual([]);
      await waitFor(() => logger.lines.length > 0, 2500);

      const started = performance.now();
      const err = await rejection(store(awsProvider(300)).loadProviderSecrets('ten_slow', 'acme'));
      expect(err.code).toBe('KG_SECRETS_UNAVAILABLE');
      expect(performance.now() - started).toBeLessThan(2000);
    });

    it.runIf(dialect === 'mysql')('serves the last-known-good copy while the database is down', async () => {
      const writer = store(awsProvider());
      await setSeedSecrets(writer, 'ten_dbdown', 'acme');
      await setSeedSecrets(writer, 'ten_dbdown', 'never-loaded');

      const url = new URL(t.databaseUrl!);
      const proxy: TcpProxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 3306) });
      cleanups.push(() => proxy.close());
      url.host = `127.0.0.1:${proxy.port}`;
      const { db: cutDb }: { db: Db } = createDatabase({ databaseUrl: url.toString(), dataDir: keyDir });
      cleanups.push(() => cutDb.destroy());

      const logger = captureLogger();
      const reader = createSecretStore({
        db: cutDb,
        keyProvider: awsProvider(),
        dataKeyTtlMs: 60_000,
        cacheTtlMs: 50,
        logger,
      });
      const loaded = await reader.loadProviderSecrets('ten_dbdown', 'acme');
      proxy.cut();
      kms.down(); // both at once
      await sleep(80);

      expect(await reader.loadProviderSecrets('ten_dbdown', 'acme')).toBe(loaded);
      await waitFor(() => logger.lines.length > 0);
      expect(JSON.stringify(logger.lines[0])).toContain('the database is unreachable');
      expect((await reader.loadProviderSecrets('ten_dbdown', 'acme')).values.AppSecret).toBe(APP_SECRET);

      const err = await rejection(reader.loadProviderSecrets('ten_dbdown', 'never-loaded'));
      expect(err).toMatchObject({ code: 'KG_SECRETS_UNAVAILABLE', status: 503 });
      expect(err.message).toBe(
        'secrets of provider "never-loaded" could not be loaded: the database is unreachable',
      );
      expectNoValues(err, logger.lines);

      proxy.restore();
      kms.up();
      expect((await reader.loadProviderSecrets('ten_dbdown', 'never-loaded')).values.AppKey).toBe(APP_KEY);
    });
  });
});
