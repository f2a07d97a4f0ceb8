/**
 * One provider secret whose ciphertext or wrapped data key was altered in the database: the proxy
 * keeps serving the requests that do not need it, and fails the ones that do with
 * KG_SECRET_UNREADABLE naming it, never showing a value, in the answer or in the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpProvider, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { captureLogLines } from './helpers/log-lines.ts';
import { corruptCiphertext, corruptWrappedKey } from './helpers/secrets.ts';
import { json, startUpstream, type TestUpstream } from './helpers/upstream.ts';

const SECRETS = {
  AppKey: 'ak_unreadable_5f1e',
  AppSecret: 'as_Good-Secret-77c3a9',
  AesKey: '00112233445566778899aabbccddeeff',
  RsaKey: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n-----END PRIVATE KEY-----\n',
};
const VALUE_FRAGMENTS = [...Object.values(SECRETS), 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw'];

describe('a provider secret that cannot be decrypted', () => {
  const log = captureLogLines();
  const logLines = log.raw;
  let gw: TestGateway;
  let upstream: TestUpstream;

  beforeAll(async () => {
    gw = await startTestGateway({ logTo: log.sink });
    upstream = await startUpstream((req, res) => json(res, 200, { ok: true, url: req.url }));
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const corrupt = (tenantId: string, provider: string, name: string) =>
    corruptCiphertext(gw.database.db, tenantId, provider, name);

  const call = (token: string, provider: string, path: string) =>
    fetch(`${gw.outboundUrl}/v1/proxy/${provider}${path}`, { headers: { authorization: `Bearer ${token}` } });

  /** `named`: the problem carries `secret` and `provider` fields (keygate's checks do; a script's secret() call reports line and column instead). */
  async function expectUnreadable(res: Response, name: string, provider: string, named = true) {
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(res.headers.get('keygate-error')).toBe('KG_SECRET_UNREADABLE');
    const body = JSON.parse(text) as { code: string; detail: string; secret?: string };
    expect(body.code).toBe('KG_SECRET_UNREADABLE');
    expect(body.detail).toContain(`"${name}"`);
    expect(body.detail).toContain('cannot be decrypted');
    if (named) expect(body).toMatchObject({ secret: name, provider });
    else expect(body.secret).toBeUndefined();
    for (const value of VALUE_FRAGMENTS) expect(text).not.toContain(value);
  }

  /** A script provider that signs every call with AppKey + AppSecret, and /rsa/... calls with RsaKey too. */
  const setUpRsaScriptProvider = (name: string) =>
    setUpProvider(
      gw,
      {
        name,
        mode: 'script',
        prefixUrl: upstream.url,
        request: `function (h, p, b, AppKey) {
          h.set('x-sig', hmac_sha256(secret('AppSecret'), AppKey + h.getURI()));
          if (h.getURI().startsWith('/rsa')) h.set('x-rsa', sha256(secret('RsaKey')));
        }`,
      },
      { AppKey: SECRETS.AppKey, AppSecret: SECRETS.AppSecret, RsaKey: SECRETS.RsaKey },
    );

  it('serves requests that use only the good secrets and names the bad one to those that need it', async () => {
    const { tenantId, serviceToken } = await setUpRsaScriptProvider('acme');
    await corrupt(tenantId, 'acme', 'RsaKey');

    const sentBefore = upstream.received.length;
    const good = await call(serviceToken, 'acme', '/orders');
    expect(good.status).toBe(200);
    expect(upstream.received.length).toBe(sentBefore + 1);
    expect(upstream.received.at(-1)!.headers['x-sig']).toMatch(/^[0-9a-f]{64}$/);

    await expectUnreadable(await call(serviceToken, 'acme', '/rsa/sign'), 'RsaKey', 'acme', false);
    expect(upstream.received.length).toBe(sentBefore + 1); // nothing went out for it
    expect((await call(serviceToken, 'acme', '/orders/2')).status).toBe(200);

    // simple mode needs AppSecret; a script gets AesKey as an argument, used or not.
    const simple = await setUpProvider(
      gw,
      { name: 'acme-simple', mode: 'simple', prefixUrl: upstream.url },
      { AppKey: SECRETS.AppKey, AppSecret: SECRETS.AppSecret },
    );
    await corrupt(simple.tenantId, 'acme-simple', 'AppSecret');
    await expectUnreadable(await call(simple.serviceToken, 'acme-simple', '/x'), 'AppSecret', 'acme-simple');

    const withAes = await setUpProvider(
      gw,
      {
        name: 'acme-aes',
        mode: 'script',
        prefixUrl: upstream.url,
        request: `function (h, p, b, AppKey, AesKey) { h.set('x-key', AppKey); }`,
      },
      { AppKey: SECRETS.AppKey, AesKey: SECRETS.AesKey },
    );
    await corrupt(withAes.tenantId, 'acme-aes', 'AesKey');
    await expectUnreadable(await call(withAes.serviceToken, 'acme-aes', '/x'), 'AesKey', 'acme-aes');

    // One error line naming the secret when it is found unreadable, not one per request; no value
    // anywhere in the log.
    const parsed = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const loadErrors = parsed.filter((l) =>
      l.msg?.toString().startsWith('provider secrets cannot be decrypted'),
    );
    expect(loadErrors).toEqual([
      expect.objectContaining({ level: 50, tenantId, provider: 'acme', unreadableSecrets: ['RsaKey'] }),
      expect.objectContaining({ level: 50, provider: 'acme-simple', unreadableSecrets: ['AppSecret'] }),
      expect.objectContaining({ level: 50, provider: 'acme-aes', unreadableSecrets: ['AesKey'] }),
    ]);
    const all = logLines.join('\n');
    for (const value of VALUE_FRAGMENTS) expect(all).not.toContain(value);
  });

  it('treats a secret whose wrapped data key was altered the same way, and logs it once', async () => {
    const { tenantId, serviceToken } = await setUpRsaScriptProvider('acme-wrapped');
    await corruptWrappedKey(gw.database.db, tenantId, 'acme-wrapped', 'RsaKey');
    const rows = await gw.database.db
      .selectFrom('secrets')
      .select(['ciphertext', 'wrapped_key'])
      .where('tenant_id', '=', tenantId)
      .execute();

    const sentBefore = upstream.received.length;
    expect((await call(serviceToken, 'acme-wrapped', '/orders')).status).toBe(200);
    await expectUnreadable(
      await call(serviceToken, 'acme-wrapped', '/rsa/sign'),
      'RsaKey',
      'acme-wrapped',
      false,
    );
    expect(upstream.received.length).toBe(sentBefore + 1);

    // Another secret set reloads the provider: RsaKey is found again, and not logged again.
    await gw.services.secrets.set(tenantId, 'acme-wrapped', 'Region', 'eu-west-1');
    expect((await call(serviceToken, 'acme-wrapped', '/orders/2')).status).toBe(200);
    await expectUnreadable(
      await call(serviceToken, 'acme-wrapped', '/rsa/sign'),
      'RsaKey',
      'acme-wrapped',
      false,
    );

    expect((await gw.services.secrets.loadProviderSecrets(tenantId, 'acme-wrapped')).values.Region).toBe(
      'eu-west-1',
    );

    const loadErrors = log.lines.filter(
      (l) =>
        l.provider === 'acme-wrapped' &&
        l.msg === 'provider secrets cannot be decrypted; the others are served',
    );
    expect(loadErrors).toEqual([
      expect.objectContaining({ level: 50, tenantId, unreadableSecrets: ['RsaKey'] }),
    ]);
    expect((loadErrors[0]!.causes as Record<string, string>).RsaKey).toMatch(
      /^the key provider refused its wrapped data key: /,
    );
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`keygate_unreadable_secrets{tenant="${tenantId}",provider="acme-wrapped"} 1\n`);

    const all = log.raw.join('\n');
    for (const value of VALUE_FRAGMENTS) expect(all).not.toContain(value);
    for (const row of rows) {
      expect(all).not.toContain(row.ciphertext.slice(8, 32));
      expect(all).not.toContain(row.wrapped_key.slice(8, 32));
    }
  });
});
