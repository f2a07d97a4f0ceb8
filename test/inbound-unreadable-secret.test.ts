/**
 * Partner-key secrets whose ciphertext or wrapped data key was altered in the database, end to end
 * on MariaDB: the key's other secret goes on verifying, a request signed with the one that does
 * not decrypt gets the 401 of any wrong signature (the partner learns nothing of keygate's
 * storage), the operator gets one error line and a metric, and nothing secret is shown anywhere.
 * A KMS that is down is not that: a node that never loaded the key answers 503, as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { retirePartnerSecret, rotatePartnerKey } from '../src/services/partner-keys.ts';
import type { AuditLogRow } from '../src/storage/schema.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import {
  createTestKey,
  createTestRoute,
  createTestTenant,
  type PartnerKeyCredentials,
  type SentResponse,
  send,
  waitFor,
  waitForAuditRow,
} from './helpers/inbound.ts';
import { captureLogLines } from './helpers/log-lines.ts';
import { corruptPartnerCiphertext, corruptPartnerWrappedKey } from './helpers/secrets.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';
import { type KmsServer, startKmsServer } from './kms-server.ts';

const LOGGED = 'partner key secrets cannot be decrypted';

let upstream: TestUpstream;
beforeAll(async () => {
  upstream = await startUpstream((req, res) => json(res, 200, { url: req.url }));
});
afterAll(async () => {
  await upstream?.close();
});

/** The problem body of a 401 KG_SIGNATURE_MISMATCH, less what differs from call to call. */
function mismatch(res: SentResponse) {
  expect(res.status, res.text).toBe(401);
  expect(res.headers['keygate-error']).toBe('KG_SIGNATURE_MISMATCH');
  const { requestId, canonicalSha256, ...rest } = res.json<Record<string, unknown>>();
  expect(requestId).toBe(res.headers['x-request-id']);
  expect(canonicalSha256).toMatch(/^[0-9a-f]{64}$/);
  return rest;
}

const auditRow = (db: TestDatabase, requestId: unknown): Promise<AuditLogRow> =>
  waitForAuditRow(db.db, requestId);

describe('a partner-key secret that cannot be decrypted', () => {
  const log = captureLogLines();
  let gw: TestGateway;
  let tenantId: string;
  /** Every secret handed out here, to prove none of them shows. */
  const secrets: string[] = [];

  beforeAll(async () => {
    gw = await startTestGateway({ dialect: 'mysql', redis: true, roles: ['inbound'], logTo: log.sink });
    tenantId = await createTestTenant(gw.services.ctx, 'unr');
    await createTestRoute(gw.services.ctx, tenantId, '/orders', upstream.url);
  });
  afterAll(async () => {
    await gw?.close();
  });

  const call = (key: PartnerKeyCredentials, secret = key.secret) =>
    send(gw.inboundUrl, '/orders/1', { key: { keyId: key.keyId, secret } });
  const errorLines = (keyId: string) => log.lines.filter((l) => l.msg === LOGGED && l.keyId === keyId);
  const metrics = () => gw.services.metrics.render([]);

  /** No secret, and no stretch of any stored ciphertext or wrapped key, in the log or in `answers`. */
  async function expectNothingSecret(answers: SentResponse[]) {
    const text = [...log.raw, ...answers.map((a) => `${JSON.stringify(a.headers)} ${a.text}`)].join('\n');
    for (const secret of secrets) expect(text).not.toContain(secret);
    const rows = await gw.database.db.selectFrom('partner_key_secrets').selectAll().execute();
    for (const row of rows) {
      for (const sealed of [row.ciphertext, row.wrapped_key]) {
        expect(text).not.toContain(sealed.slice(8, 32));
        expect(text).not.toContain(Buffer.from(sealed, 'base64').toString('hex').slice(16, 48));
      }
    }
  }

  it('during a rotation: the good secret verifies, the bad one gets a plain 401, the operator one line', async () => {
    const v1 = await createTestKey(gw.services.ctx, tenantId, { rate: 1000, burst: 1000 });
    const rotated = await rotatePartnerKey(gw.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: v1.keyId });
    const v2 = { ...v1, secret: rotated.secret };
    secrets.push(v1.secret, v2.secret);
    await corruptPartnerCiphertext(gw.database.db, v1.keyId, 2);

    const answers: SentResponse[] = [];
    for (let i = 0; i < 3; i++) {
      const good = await call(v1);
      expect(good.status, good.text).toBe(200);
      expect((await auditRow(gw.database, good.headers['x-request-id'])).secret_version).toBe(1);
      const bad = await call(v2);
      // What any wrong signature gets, word for word: nothing says a secret failed to decrypt.
      expect(mismatch(bad)).toEqual(mismatch(await call(v1, 'kgp_not-the-secret')));
      expect(await auditRow(gw.database, bad.headers['x-request-id'])).toMatchObject({
        outcome: 'bad_signature',
        secret_version: null,
        response_status: 401,
      });
      answers.push(good, bad);
    }

    // One error line for the operator, naming tenant, key and version, however many calls.
    expect(errorLines(v1.keyId)).toEqual([
      expect.objectContaining({
        level: 50,
        tenantId,
        keyId: v1.keyId,
        unreadableSecretVersions: [2],
        readableSecretVersions: [1],
        causes: { 2: expect.stringContaining('its ciphertext does not authenticate') },
      }),
    ]);
    expect(await metrics()).toContain(`keygate_unreadable_partner_key_secrets{tenant="${tenantId}"} 1`);
    expect(await metrics()).toContain(`keygate_partner_keys_without_readable_secret{tenant="${tenantId}"} 0`);
    await expectNothingSecret(answers);

    // Retiring the bad version repairs the key: the gauge drops it, the good secret verifies on.
    await retirePartnerSecret(gw.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: v1.keyId, version: 2 });
    expect((await call(v1)).status).toBe(200);
    // The retirement reaches the gateway's key cache as a config event, which may land after the
    // call above (served by the cached key, whose version 1 verifies as well). The gauge counts as
    // of the key's latest load, and a key marked stale reloads on its next call: call until the
    // reload has happened.
    await waitFor(
      async () => {
        expect((await call(v1)).status).toBe(200);
        return !(await metrics()).includes(`keygate_unreadable_partner_key_secrets{tenant="${tenantId}"}`);
      },
      10_000,
      'the unreadable-secret gauge to drop the repaired key',
    );
  });

  it('a key whose only secret does not decrypt answers 401, as to a wrong signature, not 503 or 500', async () => {
    const key = await createTestKey(gw.services.ctx, tenantId);
    const healthy = await createTestKey(gw.services.ctx, tenantId);
    secrets.push(key.secret, healthy.secret);
    await corruptPartnerWrappedKey(gw.database.db, key.keyId, 1);

    const answers: SentResponse[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(key);
      expect(mismatch(res)).toEqual(mismatch(await call(healthy, 'kgp_not-the-secret')));
      answers.push(res);
    }
    expect(errorLines(key.keyId)).toEqual([
      expect.objectContaining({
        level: 50,
        tenantId,
        keyId: key.keyId,
        unreadableSecretVersions: [1],
        readableSecretVersions: [],
        causes: { 1: expect.stringContaining('the key provider refused its wrapped data key') },
      }),
    ]);
    expect(await metrics()).toContain(`keygate_partner_keys_without_readable_secret{tenant="${tenantId}"} 1`);
    await expectNothingSecret(answers);

    // Rotating hands out a secret that verifies; the partner switches to it.
    const rotated = await rotatePartnerKey(gw.services.ctx, CLI_ACTOR, {
      tenant: tenantId,
      keyId: key.keyId,
    });
    secrets.push(rotated.secret);
    const res = await call(key, rotated.secret);
    expect(res.status, res.text).toBe(200);
    expect((await auditRow(gw.database, res.headers['x-request-id'])).secret_version).toBe(2);
    expect(await metrics()).toContain(`keygate_partner_keys_without_readable_secret{tenant="${tenantId}"} 0`);
  });
});

describe('a partner key while the KMS is down', () => {
  let kms: KmsServer;
  let database: TestDatabase;
  const nodes: TestGateway[] = [];
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  beforeAll(async () => {
    kms = await startKmsServer();
    // The SDK's own credential chain reads these; the test KMS only wants them present.
    process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
    database = await createTestDatabase('mysql');
  });
  afterAll(async () => {
    for (const node of nodes) await node.close();
    await database?.drop();
    await kms?.close();
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  });

  /** Another node of the cluster: its own memory, nothing unwrapped yet. */
  async function node(): Promise<TestGateway> {
    const gw = await startTestGateway({
      database,
      roles: ['inbound'],
      env: {
        KMS_PROVIDER: 'aws-kms',
        KMS_KEY_ID: kms.keyArn,
        AWS_REGION: kms.region,
        AWS_ENDPOINT_URL_KMS: kms.url,
      },
    });
    nodes.push(gw);
    return gw;
  }

  it('is answered 503 by a node that never loaded it, even with a refused secret beside the good one', async () => {
    const admin = await node();
    const tenantId = await createTestTenant(admin.services.ctx, 'kms');
    await createTestRoute(admin.services.ctx, tenantId, '/orders', upstream.url);
    const key = await createTestKey(admin.services.ctx, tenantId);
    await rotatePartnerKey(admin.services.ctx, CLI_ACTOR, { tenant: tenantId, keyId: key.keyId });
    await corruptPartnerWrappedKey(database.db, key.keyId, 2);

    // KMS up: the refused version is left out and the good one verifies, on a node new to the key.
    const loaded = await node();
    const ok = await send(loaded.inboundUrl, '/orders/1', { key });
    expect(ok.status, ok.text).toBe(200);
    // Started while the KMS is up (start-up checks it), and never asked for the key.
    const fresh = await node();

    kms.down();
    // A node that never loaded the key cannot decrypt any of it: 503, which a partner may retry,
    // not the 401 of a refused secret.
    const down = await send(fresh.inboundUrl, '/orders/1', { key });
    expect(down.status, down.text).toBe(503);
    expect(down.headers['keygate-error']).toBe('KG_NOT_READY');
    // The node that loaded it goes on serving its copy.
    expect((await send(loaded.inboundUrl, '/orders/1', { key })).status).toBe(200);
  });
});
