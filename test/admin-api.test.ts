/**
 * The admin API end to end on a real keygate over MariaDB: the OpenAPI document and docs page,
 * authentication, problem+json errors with field paths, 404s, the resources' life cycles,
 * optimistic activation, script tools, write-only secrets, both audit logs, metrics, and at the
 * end a scan of every response for the canary secret.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASK } from '../src/secrets/mask.ts';
import { toDbTime } from '../src/storage/db.ts';
import type { NewAuditLogRow } from '../src/storage/schema.ts';
import { type AdminClient, type AdminFixture, PROVIDER, startAdminFixture } from './helpers/admin.ts';
import { startUpstream, type TestUpstream } from './helpers/upstream.ts';

let f: AdminFixture;
let api: AdminClient;
let T: string;
let base: string;

beforeAll(async () => {
  f = await startAdminFixture({ dialect: 'mysql' });
  api = f.api;
  T = f.own.name;
  base = `/admin/v1/tenants/${T}`;
});

afterAll(async () => {
  await f?.close();
});

function expectProblem(
  res: { status: number; headers: Headers; body: any },
  status: number,
  code: string,
): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.headers.get('keygate-error')).toBe(code);
  expect(res.body).toMatchObject({
    type: expect.stringMatching(/^urn:keygate:error:/),
    title: expect.any(String),
    status,
  });
  expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
}

describe('OpenAPI document and docs page', () => {
  it('serves an OpenAPI 3.1 document without a token, every operation secured, named and permission-tagged', async () => {
    const res = await api.get('/admin/openapi.json', { token: null });
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(res.body.components.schemas.ProviderConfig).toBeDefined();
    const ops = Object.entries(res.body.paths as Record<string, Record<string, any>>).flatMap(
      ([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })),
    );
    expect(ops.length).toBeGreaterThanOrEqual(30);
    for (const { path, op } of ops) {
      expect(path).toMatch(/^\/admin\/v1\//);
      expect(op.operationId).toEqual(expect.any(String));
      expect(op.security).toEqual([{ bearer: [] }]);
      expect(op['x-keygate-permission']).toEqual(expect.any(String));
      expect(op.responses['401'].content['application/problem+json']).toBeDefined();
    }
    expect(new Set(ops.map((o) => o.op.operationId)).size).toBe(ops.length);
  });

  it('renders a self-contained docs page listing every operation', async () => {
    const doc = (await api.get('/admin/openapi.json', { token: null })).body;
    const res = await api.get('/admin/docs', { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.text).not.toMatch(/<script|<link|<img|\ssrc=|@import/i);
    for (const item of Object.values(doc.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(item))
        expect(res.text).toContain(`id="${op.operationId.toLowerCase()}"`);
    }
  });

  it('keeps /metrics unauthenticated and counts admin requests per route template and status', async () => {
    await api.get(`${base}/providers`);
    const res = await api.get('/metrics', { token: null });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(
      /keygate_http_requests_total\{listener="admin",provider="\/admin\/v1\/tenants\/:tenant\/providers",status="200"\} \d+/,
    );
    expect(res.text).toMatch(/keygate_http_request_duration_seconds_bucket\{le="[^"]+",listener="admin"/);
    await api.get('/admin/v1/no/such/route');
    const after = await api.get('/metrics', { token: null });
    expect(after.text).toMatch(
      /keygate_http_requests_total\{listener="admin",provider="unmatched",status="404"\} \d+/,
    );
  });
});

describe('authentication', () => {
  it('answers 401 KG_UNAUTHENTICATED without a token, with a malformed header, or with an unknown token', async () => {
    const none = await api.get('/admin/v1/me', { token: null });
    expectProblem(none, 401, 'KG_UNAUTHENTICATED');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expectProblem(
      await api.get('/admin/v1/me', { token: null, headers: { authorization: 'Basic Zm9vOmJhcg==' } }),
      401,
      'KG_UNAUTHENTICATED',
    );
    expectProblem(
      await api.get('/admin/v1/me', { token: 'kga_not-a-real-token' }),
      401,
      'KG_UNAUTHENTICATED',
    );
  });

  it('answers 401 KG_TOKEN_EXPIRED for an expired or a revoked token', async () => {
    expectProblem(await api.get('/admin/v1/me', { token: f.expiredToken }), 401, 'KG_TOKEN_EXPIRED');
    expectProblem(await api.get('/admin/v1/me', { token: f.revokedToken }), 401, 'KG_TOKEN_EXPIRED');
  });

  it('tells a caller who it is', async () => {
    const res = await api.get('/admin/v1/me', { token: f.own.developerToken });
    expect(res.body).toEqual({
      tokenId: f.own.developerTokenId,
      role: 'tenant_developer',
      tenantId: f.own.id,
    });
  });
});

describe('errors', () => {
  it('answers unknown routes with a 404 problem (401 first under /admin/v1 without a token)', async () => {
    expectProblem(await api.get('/admin/v1/nothing-here'), 404, 'KG_NOT_FOUND');
    expectProblem(await api.request('PATCH', '/admin/v1/tenants'), 404, 'KG_NOT_FOUND');
    expectProblem(await api.get('/elsewhere', { token: null }), 404, 'KG_NOT_FOUND');
    expectProblem(await api.get('/admin/v1/nothing-here', { token: null }), 401, 'KG_UNAUTHENTICATED');
  });

  it('reports body validation errors as KG_VALIDATION_FAILED with field paths', async () => {
    const res = await api.post(`${base}/members`, { name: 42, role: 'owner', expiresInSeconds: 1 });
    expectProblem(res, 400, 'KG_VALIDATION_FAILED');
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['expiresInSeconds', 'name', 'role']);
    expect(
      res.body.errors.every((e: { in: string; message: string }) => e.in === 'body' && e.message.length > 0),
    ).toBe(true);
  });

  it('reports nested provider-config errors with dotted paths', async () => {
    const res = await api.post(`${base}/providers/${PROVIDER}/versions`, {
      name: PROVIDER,
      mode: 'token',
      prefixUrl: 'ftp://nope',
      token: { clientAuth: 'header' },
      surprise: true,
    });
    expectProblem(res, 400, 'KG_VALIDATION_FAILED');
    const paths = res.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['prefixUrl', 'token.clientAuth']));
    expect(
      res.body.errors.some(
        (e: { path: string; message: string }) => e.message.includes('surprise') || e.path === 'surprise',
      ),
    ).toBe(true);
  });

  it('reports query and path parameter errors with their location', async () => {
    const q = await api.get(`${base}/admin-audit?limit=0`);
    expectProblem(q, 400, 'KG_VALIDATION_FAILED');
    expect(q.body.errors).toEqual([expect.objectContaining({ path: 'limit', in: 'query' })]);
    const p = await api.get(`${base}/providers/${PROVIDER}/versions/latest`);
    expectProblem(p, 400, 'KG_VALIDATION_FAILED');
    expect(p.body.errors[0]).toMatchObject({ path: 'version', in: 'path' });
    const t = await api.get(`${base}/audit-log?since=yesterday`);
    expect(t.body.errors[0]).toMatchObject({ path: 'since', in: 'query' });
  });

  it('rejects malformed JSON, a wrong content type and a missing body with stable codes', async () => {
    const bad = await api.request('POST', '/admin/v1/tenants', {
      body: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(bad, 400, 'KG_BAD_REQUEST');
    const form = await api.request('POST', '/admin/v1/tenants', {
      body: 'name=x',
      headers: { 'content-type': 'text/plain' },
    });
    expectProblem(form, 415, 'KG_UNSUPPORTED_MEDIA_TYPE');
    const missing = await api.request('POST', '/admin/v1/tenants');
    expectProblem(missing, 400, 'KG_VALIDATION_FAILED');
    const huge = await api.post(`${base}/scripts/validate`, {
      kind: 'request',
      source: 'x'.repeat(3 * 1024 * 1024),
    });
    expectProblem(huge, 413, 'KG_PAYLOAD_TOO_LARGE');
  });

  it('answers 404 for unknown ids of every kind', async () => {
    const cases: Array<[string, string]> = [
      ['GET', '/admin/v1/tenants/no-such-tenant'],
      ['GET', '/admin/v1/tenants/no-such-tenant/providers'],
      ['GET', `${base}/providers/no-such-provider`],
      ['GET', `${base}/providers/no-such-provider/versions`],
      ['GET', `${base}/providers/${PROVIDER}/versions/999`],
      ['GET', `${base}/providers/${PROVIDER}/diff?from=1&to=999`],
      ['DELETE', `${base}/members/atk_nope`],
      ['DELETE', `${base}/service-tokens/stk_nope`],
      ['DELETE', '/admin/v1/admin-tokens/atk_nope'],
      ['DELETE', `${base}/providers/${PROVIDER}/secrets/NoSuchSecret`],
      ['GET', `${base}/audit-log/req_nope`],
      ['GET', '/admin/v1/audit-log/req_nope'],
      ['DELETE', `${base}/partner-keys/pk_nope`],
      ['DELETE', `${base}/routes/rte_nope`],
    ];
    for (const [method, path] of cases) {
      const res = await api.request(method, path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    }
    const activate = await api.post(`${base}/providers/${PROVIDER}/activate`, {
      version: 999,
      expectedRevision: 0,
    });
    expect(activate.status).toBe(404);
  });

  it('never leaks an internal error message', async () => {
    // A cursor that does not even decode is refused before any query.
    const malformed = await api.get(`${base}/admin-audit?cursor=${'%'.repeat(3)}`);
    expect(malformed.status).toBeLessThan(500);
    expect(malformed.headers.get('content-type')).toBe('application/problem+json');
    // Cursors that decode to the right shape but hold garbage reach the database and must still be
    // answered cleanly: no 500, and no SQL or stack in what comes back.
    const garbage = (parts: string[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    for (const path of [
      `${base}/audit-log?cursor=${garbage(['\u0000x', '\u0000y'])}`,
      `/admin/v1/audit-log?cursor=${garbage(['\u0000x', '\u0000y'])}`,
      `${base}/admin-audit?cursor=${garbage(['\u0000x'])}`,
    ]) {
      const res = await api.get(path);
      expect(res.status, `${path}: ${res.text}`).toBeLessThan(500);
      if (res.status >= 400) {
        expect(res.headers.get('content-type')).toBe('application/problem+json');
        expect(JSON.stringify(res.body), path).not.toMatch(
          /\bselect\b|\bwhere\b|`|sql|ER_[A-Z_]+|\n\s+at |\.[jt]s:\d+/i,
        );
      } else {
        expect(res.body.items, path).toEqual(expect.any(Array));
      }
    }
  });
});

describe('tenants, members and tokens', () => {
  it('creates, lists and gets tenants; a duplicate is 409', async () => {
    const name = `t-created-${Date.now() % 1e6}`;
    const created = await api.post('/admin/v1/tenants', { name });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^ten_/),
      name,
      createdAt: expect.stringMatching(/Z$/),
    });
    expectProblem(await api.post('/admin/v1/tenants', { name }), 409, 'KG_CONFLICT');
    const list = await api.get('/admin/v1/tenants');
    expect(list.body.items.map((t: { name: string }) => t.name)).toContain(name);
    expect((await api.get(`/admin/v1/tenants/${created.body.id}`)).body.name).toBe(name);
    const own = await api.get('/admin/v1/tenants', { token: f.own.adminToken });
    expect(own.body.items.map((t: { id: string }) => t.id)).toEqual([f.own.id]);
  });

  it('creates a member with role and expiry, lists it without its token, and revokes it for good', async () => {
    const created = await api.post(
      `${base}/members`,
      { name: 'bob', role: 'tenant_developer', expiresInSeconds: 3600 },
      { token: f.own.adminToken },
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      role: 'tenant_developer',
      tenantId: f.own.id,
      token: expect.stringMatching(/^kga_/),
    });
    expect(Date.parse(created.body.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    const token = created.body.token as string;
    expect((await api.get('/admin/v1/me', { token })).status).toBe(200);

    const list = await api.get(`${base}/members`, { token: f.own.adminToken });
    const entry = list.body.items.find((m: { id: string }) => m.id === created.body.id);
    expect(entry).toMatchObject({ name: 'bob', status: 'active', createdBy: f.own.adminTokenId });
    expect(list.text).not.toContain(token);
    expect(list.text).not.toMatch(/hash/i);
    expect(list.body.items.find((m: { name: string }) => m.name === 'expired').status).toBe('expired');

    expect((await api.delete(`${base}/members/${created.body.id}`, { token: f.own.adminToken })).status).toBe(
      204,
    );
    expectProblem(await api.get('/admin/v1/me', { token }), 401, 'KG_TOKEN_EXPIRED');
    // Revoked before: it exists, so 409, not 404.
    expectProblem(await api.delete(`${base}/members/${created.body.id}`), 409, 'KG_ALREADY_REVOKED');
    // A tenant's members path never reaches another tenant's token.
    expect((await api.delete(`${base}/members/${f.other.adminTokenId}`)).status).toBe(404);
  });

  it('a member cannot be created with a gateway role, and gateway tokens are separate', async () => {
    const res = await api.post(`${base}/members`, { name: 'x', role: 'gateway_admin' });
    expectProblem(res, 400, 'KG_VALIDATION_FAILED');
    const gw = await api.post('/admin/v1/admin-tokens', { name: 'ops' });
    expect(gw.status).toBe(201);
    expect(gw.body).toMatchObject({ role: 'gateway_admin', tenantId: null });
    const list = await api.get('/admin/v1/admin-tokens');
    expect(list.body.items.every((t: { tenantId: string | null }) => t.tenantId === null)).toBe(true);
    expect(list.body.items.map((t: { id: string }) => t.id)).toContain(gw.body.id);
    expect((await api.delete(`/admin/v1/admin-tokens/${gw.body.id}`)).status).toBe(204);
    expectProblem(await api.get('/admin/v1/me', { token: gw.body.token }), 401, 'KG_TOKEN_EXPIRED');
  });

  it('creates, lists and revokes service tokens; a revoked one stops reaching the proxy', async () => {
    const created = await api.post(
      `${base}/service-tokens`,
      { name: 'billing' },
      { token: f.own.adminToken },
    );
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    const proxied = () =>
      fetch(`${f.gw.outboundUrl}/v1/proxy/${PROVIDER}/ping`, {
        headers: { authorization: `Bearer ${token}` },
      });
    expect((await proxied()).status).toBe(200);
    const list = await api.get(`${base}/service-tokens`);
    expect(list.body.items.find((t: { id: string }) => t.id === created.body.id)).toMatchObject({
      status: 'active',
      revokedAt: null,
    });
    expect(list.text).not.toContain(token);
    expect((await api.delete(`${base}/service-tokens/${created.body.id}`)).status).toBe(204);
    // The proxy caches token lookups and rechecks them every 5 s (src/outbound/service-auth.ts).
    const deadline = Date.now() + 12_000;
    let status = 200;
    while (status !== 401 && Date.now() < deadline) {
      status = (await proxied()).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(401);
    const after = await api.get(`${base}/service-tokens`);
    expect(after.body.items.find((t: { id: string }) => t.id === created.body.id).status).toBe('revoked');
  });
});

describe('revoking or retiring twice', () => {
  it('answers 409 KG_ALREADY_REVOKED for every kind, and 404 only for an id the tenant does not have', async () => {
    const svc = (await api.post(`${base}/service-tokens`, { name: 'twice' })).body;
    expect((await api.delete(`${base}/service-tokens/${svc.id}`)).status).toBe(204);
    expectProblem(await api.delete(`${base}/service-tokens/${svc.id}`), 409, 'KG_ALREADY_REVOKED');
    const otherSvc = (await api.post(`/admin/v1/tenants/${f.other.name}/service-tokens`, { name: 'x' })).body;
    expectProblem(await api.delete(`${base}/service-tokens/${otherSvc.id}`), 404, 'KG_NOT_FOUND');

    const gw = (await api.post('/admin/v1/admin-tokens', { name: 'twice' })).body;
    expect((await api.delete(`/admin/v1/admin-tokens/${gw.id}`)).status).toBe(204);
    expectProblem(await api.delete(`/admin/v1/admin-tokens/${gw.id}`), 409, 'KG_ALREADY_REVOKED');
    // A member is not a gateway token, revoked or not.
    expectProblem(await api.delete(`/admin/v1/admin-tokens/${f.own.adminTokenId}`), 404, 'KG_NOT_FOUND');

    const key = (await api.post(`${base}/partner-keys`, { name: 'twice' })).body;
    await api.post(`${base}/partner-keys/${key.keyId}/rotate`);
    expect((await api.post(`${base}/partner-keys/${key.keyId}/retire-secret`, { version: 1 })).status).toBe(
      200,
    );
    expectProblem(
      await api.post(`${base}/partner-keys/${key.keyId}/retire-secret`, { version: 1 }),
      409,
      'KG_ALREADY_REVOKED',
    );
    expectProblem(
      await api.post(`${base}/partner-keys/${key.keyId}/retire-secret`, { version: 7 }),
      404,
      'KG_NOT_FOUND',
    );
    expect((await api.delete(`${base}/partner-keys/${key.keyId}`)).status).toBe(200);
    expectProblem(await api.delete(`${base}/partner-keys/${key.keyId}`), 409, 'KG_ALREADY_REVOKED');
    const otherKey = (await api.post(`/admin/v1/tenants/${f.other.name}/partner-keys`, { name: 'x' })).body;
    expectProblem(await api.delete(`${base}/partner-keys/${otherKey.keyId}`), 404, 'KG_NOT_FOUND');
  });
});

describe('providers and versions', () => {
  const P = 'lifecycle';
  const v1 = () => ({ name: P, mode: 'simple', prefixUrl: f.upstream.url });
  const script = (marker: string) =>
    [
      'function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {',
      `  reqHeaders.set('x-version', '${marker}');`,
      "  reqHeaders.set('x-app', AppKey);",
      '}',
    ].join('\n');

  it('creates drafts (a developer may), lists, gets, diffs, activates with a revision check and rolls back', async () => {
    const dev = f.own.developerToken;
    const first = await api.post(`${base}/providers/${P}/versions`, v1(), { token: dev });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      provider: P,
      version: 1,
      active: false,
      config: { name: P, timeoutMs: 5000 },
    });
    const second = await api.post(
      `${base}/providers/${P}/versions`,
      { ...v1(), mode: 'script', request: script('two') },
      { token: dev },
    );
    expect(second.body.version).toBe(2);
    const mismatch = await api.post(`${base}/providers/${P}/versions`, { ...v1(), name: 'other-name' });
    expect(mismatch.body.errors).toEqual([expect.objectContaining({ path: 'name' })]);

    const provider = await api.get(`${base}/providers/${P}`, { token: dev });
    expect(provider.body).toMatchObject({ name: P, activeVersion: null, revision: 0 });
    expect(
      (await api.get(`${base}/providers/${P}/versions`)).body.items.map(
        (v: { version: number }) => v.version,
      ),
    ).toEqual([2, 1]);
    expect((await api.get(`${base}/providers/${P}/versions/2`)).body.config.request).toBe(script('two'));
    expectProblem(await api.get(`${base}/providers/${P}/versions/active`), 404, 'KG_NOT_FOUND');

    const diff = await api.get(`${base}/providers/${P}/diff?from=1&to=2`, { token: dev });
    expect(diff.status).toBe(200);
    expect(diff.body.identical).toBe(false);
    expect(diff.body.unified).toContain('-  "mode": "simple",');
    expect(diff.body.unified).toContain('+  "mode": "script",');
    expect(diff.body.unified).toContain("+  reqHeaders.set('x-version', 'two');");
    expect(diff.body.lines.filter((l: { op: string }) => l.op === 'add').length).toBeGreaterThanOrEqual(5);
    expect((await api.get(`${base}/providers/${P}/diff?from=2&to=2`)).body).toMatchObject({
      identical: true,
      unified: '',
    });

    expectProblem(
      await api.post(`${base}/providers/${P}/activate`, { version: 2, expectedRevision: 0 }, { token: dev }),
      403,
      'KG_FORBIDDEN',
    );
    const stale = await api.post(`${base}/providers/${P}/activate`, { version: 1, expectedRevision: 7 });
    expectProblem(stale, 409, 'KG_VERSION_CONFLICT');
    const a1 = await api.post(
      `${base}/providers/${P}/activate`,
      { version: 1, expectedRevision: 0 },
      { token: f.own.adminToken },
    );
    expect(a1.body).toMatchObject({ activeVersion: 1, revision: 1 });
    const a2 = await api.post(`${base}/providers/${P}/activate`, { version: 2, expectedRevision: 1 });
    expect(a2.body).toMatchObject({ activeVersion: 2, revision: 2 });
    expect((await api.get(`${base}/providers/${P}/versions/active`)).body.version).toBe(2);
    expect((await api.get(`${base}/providers/${P}/diff?from=1&to=active`)).body.to).toBe(2);

    const back = await api.post(`${base}/providers/${P}/rollback`, { expectedRevision: 2 });
    expect(back.body).toMatchObject({ activeVersion: 1, revision: 3 });
    expectProblem(
      await api.post(`${base}/providers/${P}/rollback`, { to: 2, expectedRevision: 2 }),
      409,
      'KG_VERSION_CONFLICT',
    );
    const forward = await api.request('POST', `${base}/providers/${P}/rollback`, {
      body: JSON.stringify({ to: 2 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(forward.body).toMatchObject({ activeVersion: 2, revision: 4 });
  });

  it('lets exactly one of several concurrent activations with the same expectedRevision win', async () => {
    const name = 'race';
    for (let v = 0; v < 4; v++) {
      await api.post(`${base}/providers/${name}/versions`, {
        name,
        mode: 'simple',
        prefixUrl: `${f.upstream.url}/v${v}`,
      });
    }
    for (let round = 0; round < 5; round++) {
      const { revision } = (await api.get(`${base}/providers/${name}`)).body;
      const results = await Promise.all(
        [1, 2, 3, 4].map((version) =>
          api.post(`${base}/providers/${name}/activate`, { version, expectedRevision: revision }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 409, 409, 409]);
      for (const r of results.filter((x) => x.status === 409))
        expect(r.body.code).toBe('KG_VERSION_CONFLICT');
      const winner = results.find((r) => r.status === 200)!.body;
      const now = (await api.get(`${base}/providers/${name}`)).body;
      expect(now).toMatchObject({ revision: revision + 1, activeVersion: winner.activeVersion });
    }
    // Only the winners were audited: a lost race leaves no admin_audit row.
    const audit = await api.get(`${base}/admin-audit?action=provider.activate&limit=500`);
    expect(audit.body.items.filter((e: { targetId: string }) => e.targetId === name)).toHaveLength(5);
  });
});

describe('script tools', () => {
  it('validates scripts and reports syntax errors with line and column', async () => {
    const ok = await api.post(
      `${base}/scripts/validate`,
      { kind: 'request', source: 'function (h) {\n  h.set("a", "b");\n}' },
      { token: f.own.developerToken },
    );
    expect(ok.body).toEqual({ valid: true, kind: 'request' });
    const bad = await api.post(`${base}/scripts/validate`, {
      kind: 'response',
      source: 'function (respBody) {\n  let x = ;\n}',
    });
    expect(bad.status).toBe(200);
    expect(bad.body).toMatchObject({
      valid: false,
      kind: 'response',
      error: { code: 'KG_SCRIPT_SYNTAX', line: 2, column: expect.any(Number) },
    });
    expect(bad.body.error.column).toBeGreaterThanOrEqual(9);
    const draft = await api.post(`${base}/providers/broken/versions`, {
      name: 'broken',
      mode: 'script',
      prefixUrl: f.upstream.url,
      request: 'function (h) {\n\n  return (;\n}',
    });
    expectProblem(draft, 400, 'KG_SCRIPT_SYNTAX');
    expect(draft.body).toMatchObject({ line: 3 });
  });

  it('dry-runs a draft: the signed request, log output and timing, secrets masked; with send it runs the round trip', async () => {
    const P = 'dry';
    const request = [
      'function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {',
      "  var s = secret('AppSecret');",
      "  log('signing with', s);",
      "  reqHeaders.set('x-raw', s);",
      "  reqHeaders.set('x-b64', base64_encode(s));",
      "  reqBody.set('leak', s);",
      "  reqBody.set('sign', sha256(reqBody.buildSignStr() + s));",
      '}',
    ].join('\n');
    await api.post(`${base}/providers/${P}/versions`, {
      name: P,
      mode: 'script',
      prefixUrl: f.upstream.url,
      request,
    });
    await api.put(`${base}/providers/${P}/secrets/AppSecret`, { value: f.canary });
    await api.put(`${base}/providers/${P}/secrets/AppKey`, { value: 'public-app-key' });
    const res = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 1, request: { method: 'POST', path: '/orders', body: { amount: 5 } } },
      { token: f.own.developerToken },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      provider: P,
      version: 1,
      request: { method: 'POST', url: `${f.upstream.url}/orders` },
    });
    expect(res.body.request.headers['x-raw']).not.toContain(f.canary);
    expect(res.body.logs).toHaveLength(1);
    expect(res.body.timing.scriptUs).toEqual(expect.any(Number));
    expect(JSON.parse(res.body.request.body)).toMatchObject({
      amount: 5,
      sign: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    const before = f.upstream.received.length;
    const sent = await api.post(`${base}/providers/${P}/dry-run`, {
      version: 1,
      request: { path: '/orders', body: { amount: 6 } },
      send: true,
    });
    expect(sent.status).toBe(200);
    expect(f.upstream.received.length).toBe(before + 1);
    expect(f.upstream.received.at(-1)!.body.toString()).toContain(f.canary); // the real request carried it...
    expect(sent.body.response).toMatchObject({ status: 200 });
    expect(sent.body.response.body).not.toContain(f.canary); // ...the echo back to the developer did not
  });

  it("dry-runs a failing script: the proxy's error plus what the script logged, masked; the proxy itself sends no logs", async () => {
    const P = 'failing';
    const request = [
      'function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl) {',
      "  var s = secret('AppSecret');",
      "  log('string to sign:', 'a=1&key=' + s);",
      "  log('about to fail');",
      '  reqHeaders.set(undefinedThing.name, s);',
      '}',
    ].join('\n');
    await api.post(`${base}/providers/${P}/versions`, {
      name: P,
      mode: 'script',
      prefixUrl: f.upstream.url,
      request,
    });
    await api.put(`${base}/providers/${P}/secrets/AppSecret`, { value: f.canary });
    const res = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 1, request: { path: '/orders', body: { amount: 5 } } },
      { token: f.own.developerToken },
    );
    expectProblem(res, 502, 'KG_SCRIPT_ERROR');
    expect(res.body).toMatchObject({ line: 5, detail: expect.stringContaining('undefinedThing') });
    expect(res.body.logs).toEqual([`string to sign: a=1&key=${MASK}`, 'about to fail']);

    // The same failure through the proxy: a calling service gets the error, never the log.
    await api.post(`${base}/providers/${P}/activate`, { version: 1, expectedRevision: 0 });
    const token = (await api.post(`${base}/service-tokens`, { name: 'failing-caller' })).body.token;
    const proxied = await fetch(`${f.gw.outboundUrl}/v1/proxy/${P}/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"amount":5}',
    });
    const problem = (await proxied.json()) as Record<string, unknown>;
    expect({ status: proxied.status, code: problem.code }).toEqual({ status: 502, code: 'KG_SCRIPT_ERROR' });
    expect(problem).not.toHaveProperty('logs');
    expect(JSON.stringify(problem)).not.toContain('string to sign');
    expect(JSON.stringify(problem)).not.toContain(f.canary);
  });
});

describe("a tenant developer's dry-run", () => {
  let elsewhere: TestUpstream;
  beforeAll(async () => {
    elsewhere = await startUpstream((_req, res) => {
      res.end('{"got":"it"}');
    });
  });
  afterAll(() => elsewhere.close());

  it('reaches only hosts the active version allows; a tenant admin may send the draft anywhere it names', async () => {
    const P = 'wander';
    // The active version talks to the usual upstream; a developer's draft points at another host.
    await api.post(`${base}/providers/${P}/versions`, { name: P, mode: 'simple', prefixUrl: f.upstream.url });
    await api.post(`${base}/providers/${P}/activate`, { version: 1, expectedRevision: 0 });
    await api.put(`${base}/providers/${P}/secrets/AppSecret`, { value: f.canary });
    await api.put(`${base}/providers/${P}/secrets/AppKey`, { value: 'public-app-key' });
    const dev = { token: f.own.developerToken };
    const draft = await api.post(
      `${base}/providers/${P}/versions`,
      {
        name: P,
        mode: 'script',
        prefixUrl: elsewhere.url,
        request: 'function (h) { h.set("x-sig", sha256(secret("AppSecret"))); }',
      },
      dev,
    );
    expect(draft.status, draft.text).toBe(201);
    const viaPost = await api.post(
      `${base}/providers/${P}/versions`,
      {
        name: P,
        mode: 'script',
        prefixUrl: f.upstream.url,
        allowedHosts: [new URL(elsewhere.url).host],
        request: `function (h) { http_post_json("${elsewhere.url}/collect", { s: secret("AppSecret") }, {}); }`,
      },
      dev,
    );
    expect(viaPost.status, viaPost.text).toBe(201);

    // Signing without sending is fine: nothing leaves keygate.
    const shown = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 2, request: { path: '/a' } },
      dev,
    );
    expect(shown.status, shown.text).toBe(200);
    expect(shown.body.request.url).toBe(`${elsewhere.url}/a`);

    const refusedSend = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 2, request: { path: '/a' }, send: true },
      dev,
    );
    expectProblem(refusedSend, 502, 'KG_EGRESS_DENIED');
    expect(refusedSend.body.detail).toContain('active version');
    const refusedPost = await api.post(`${base}/providers/${P}/dry-run`, { version: 3, request: {} }, dev);
    expectProblem(refusedPost, 502, 'KG_EGRESS_DENIED');
    expect(elsewhere.received).toHaveLength(0);

    // The developer may send to the approved host, and a tenant admin wherever the draft says.
    const approved = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 1, request: { path: '/a' }, send: true },
      dev,
    );
    expect(approved.status, approved.text).toBe(200);
    const byAdmin = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 2, request: { path: '/a' }, send: true },
      { token: f.own.adminToken },
    );
    expect(byAdmin.status, byAdmin.text).toBe(200);
    expect(byAdmin.body.response).toMatchObject({ status: 200, body: '{"got":"it"}' });
    expect(elsewhere.received).toHaveLength(1);
  });

  it('runs with stand-ins of the secrets, so no disguise of a value can reach the developer', async () => {
    const P = 'disguise';
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await api.post(`${base}/providers/${P}/versions`, {
      name: P,
      mode: 'script',
      prefixUrl: f.upstream.url,
      request: [
        'function (h) {',
        "  var s = secret('AppSecret');",
        "  h.set('x-rev', s.split('').reverse().join(''));",
        "  h.set('x-len', String(s.length));",
        "  h.set('x-hex', String(/^[0-9a-f]+$/.test(secret('HexKey'))));",
        "  h.set('x-sig', rsa_sha256_sign(secret('PrivateKey'), 'x'));",
        "  h.set('x-token', String(token_load()));",
        '}',
      ].join('\n'),
    });
    await api.put(`${base}/providers/${P}/secrets/AppSecret`, { value: f.canary });
    await api.put(`${base}/providers/${P}/secrets/HexKey`, { value: '00112233445566778899aabbccddeeff' });
    await api.put(`${base}/providers/${P}/secrets/PrivateKey`, { value: pem });
    const dryRun = (token?: string) =>
      api.post(`${base}/providers/${P}/dry-run`, { version: 1, request: { path: '/a' } }, { token });

    const dev = await dryRun(f.own.developerToken);
    expect(dev.status, dev.text).toBe(200);
    expect(dev.body.secrets).toBe('stand-in');
    const h = dev.body.request.headers;
    expect(h['x-rev']).not.toBe([...f.canary].reverse().join(''));
    expect(h['x-len']).toBe(String(f.canary.length)); // the shape is kept: length, character classes
    expect(h['x-hex']).toBe('true');
    expect(h['x-token']).toBe('stand-in-access-token');
    const realSignature = sign('sha256', Buffer.from('x'), privateKey).toString('base64');
    expect(h['x-sig']).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(h['x-sig']).not.toBe(realSignature);

    // A tenant admin, who may set the secrets, dry-runs with the real ones.
    const admin = await dryRun(f.own.adminToken);
    expect(admin.body.secrets).toBe('real');
    expect(admin.body.request.headers['x-sig']).toBe(realSignature);
  });

  it('leaves no isolate behind: each dry-run compiles its own and retires it', async () => {
    const P = 'many-drafts';
    const { sandbox } = f.gw.services.ctx;
    const before = sandbox.cachedScripts();
    for (let i = 0; i < 5; i++) {
      await api.post(`${base}/providers/${P}/versions`, {
        name: P,
        mode: 'script',
        prefixUrl: f.upstream.url,
        request: `function (h) { h.set('x-draft', '${i}'); }`,
      });
      const res = await api.post(
        `${base}/providers/${P}/dry-run`,
        { version: i + 1, request: { path: '/a' } },
        { token: f.own.developerToken },
      );
      expect(res.body.request.headers['x-draft']).toBe(String(i));
    }
    expect(sandbox.cachedScripts()).toBe(before);
  });

  it('signs query values as a real call would: a space is %20, a plus stays a plus', async () => {
    const P = 'queries';
    await api.post(`${base}/providers/${P}/versions`, {
      name: P,
      mode: 'script',
      prefixUrl: f.upstream.url,
      request: 'function (h, p) { h.set("x-q", JSON.stringify(p.get("q")) + JSON.stringify(p.get("p"))); }',
    });
    const res = await api.post(
      `${base}/providers/${P}/dry-run`,
      { version: 1, request: { method: 'GET', query: { q: 'a b', p: '1+1' } } },
      { token: f.own.developerToken },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.request.headers['x-q']).toBe('"a b""1+1"');
    expect(res.body.request.url).toBe(`${f.upstream.url}/?q=a%20b&p=1%2B1`);
  });

  it('with send, answers as the proxy would: gzip decoded, JSON detected by content type', async () => {
    const zipping = await startUpstream((req, res) => {
      const json = req.url.startsWith('/json');
      res.writeHead(200, {
        'content-type': json ? 'application/json' : 'text/plain',
        'content-encoding': 'gzip',
      });
      res.end(gzipSync(json ? '{"zipped":true}' : '{"looks":"like json"}'));
    });
    try {
      const P = 'zipped';
      await api.post(`${base}/providers/${P}/versions`, {
        name: P,
        mode: 'script',
        prefixUrl: zipping.url,
        request: 'function (h) { h.set("x-a", "1"); }',
        response: 'function (respBody) { if (respBody !== null) respBody.seen = true; }',
      });
      const send = (path: string) =>
        api.post(`${base}/providers/${P}/dry-run`, {
          version: 1,
          request: { method: 'GET', path },
          send: true,
        });
      const json = await send('/json');
      expect(json.status, json.text).toBe(200);
      expect(JSON.parse(json.body.response.body)).toEqual({ zipped: true, seen: true });
      expect(json.body.response.headers).not.toHaveProperty('content-encoding');
      // JSON sent as text/plain is parsed by content, as in the proxy.
      const text = await send('/text');
      expect(text.status, text.text).toBe(200);
      expect(JSON.parse(text.body.response.body)).toEqual({ looks: 'like json', seen: true });
    } finally {
      await zipping.close();
    }
  });
});

describe('secrets', () => {
  it('sets (201), rotates (200), lists names and updatedAt only, and deletes (204, then 404)', async () => {
    const path = `${base}/providers/${PROVIDER}/secrets/Rotating`;
    const first = await api.put(path, { value: `${f.canary}-1` }, { token: f.own.adminToken });
    expect(first.status).toBe(201);
    expect(Object.keys(first.body).sort()).toEqual(['name', 'provider', 'updatedAt']);
    const second = await api.put(path, { value: `${f.canary}-2`, sensitive: true });
    expect(second.status).toBe(200);
    const list = await api.get(`${base}/providers/${PROVIDER}/secrets`);
    const names = list.body.items.map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(['AppKey', 'AppSecret', 'Rotating']));
    for (const item of list.body.items)
      expect(Object.keys(item).sort()).toEqual(['name', 'provider', 'updatedAt']);
    const all = await api.get(`${base}/secrets`);
    expect(all.body.items.length).toBeGreaterThanOrEqual(list.body.items.length);
    expectProblem(await api.put(path, { value: 'x' }, { token: f.own.developerToken }), 403, 'KG_FORBIDDEN');
    expect((await api.delete(path)).status).toBe(204);
    expect((await api.delete(path)).status).toBe(404);
    const bad = await api.put(`${base}/providers/${PROVIDER}/secrets/bad%20name`, { value: 'x' });
    expectProblem(bad, 400, 'KG_VALIDATION_FAILED');
    expect(bad.body.errors[0].path).toBe('name');
  });

  it('masks secret values in every admin_audit row', async () => {
    const rows = await f.gw.services.db.selectFrom('admin_audit').selectAll().execute();
    expect(rows.some((r) => r.action === 'secret.set' || r.action === 'secret.rotate')).toBe(true);
    for (const r of rows) expect(JSON.stringify(r)).not.toContain(f.canary);
  });
});

describe('admin audit log', () => {
  it('records every API change with the acting token, before / after, in pages with a cursor', async () => {
    const res = await api.get(`${base}/admin-audit?limit=500`);
    const actions = new Set(res.body.items.map((e: { action: string }) => e.action));
    for (const a of [
      'secret.set',
      'secret.rotate',
      'secret.delete',
      'admin-token.create',
      'admin-token.revoke',
      'service-token.create',
      'service-token.revoke',
      'provider.version.create',
      'provider.activate',
      'provider.rollback',
    ]) {
      expect(actions).toContain(a);
    }
    const byApi = res.body.items.find(
      (e: { action: string; actor: any }) => e.action === 'provider.rollback',
    );
    expect(byApi.actor).toMatchObject({ kind: 'admin', role: 'gateway_admin' });
    expect(byApi.before).toMatchObject({ activeVersion: expect.any(Number) });
    // Every change says what it changed: a before state, an after state, or both.
    for (const e of res.body.items) {
      expect(e.before ?? e.after, `${e.action} records neither before nor after`).toBeTruthy();
    }
    const rotated = res.body.items.find(
      (e: { action: string; after: { sensitive?: boolean } }) =>
        e.action === 'secret.rotate' && e.after.sensitive !== undefined,
    );
    expect(rotated).toMatchObject({
      before: { version: expect.any(Number), value: '****' },
      after: { value: '****', sensitive: true },
    });
    expect(rotated.after.version).toBe(rotated.before.version + 1);
    const revoked = res.body.items.find((e: { action: string }) => e.action === 'service-token.revoke');
    expect(revoked).toMatchObject({ before: { revokedAt: null }, after: { revokedAt: expect.any(String) } });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api.get(`${base}/admin-audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.body.items.length).toBeLessThanOrEqual(7);
      seen.push(...page.body.items.map((e: { id: string }) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(res.body.items.map((e: { id: string }) => e.id));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters by action and time, and keeps tenant roles to their tenant', async () => {
    const only = await api.get(`${base}/admin-audit?action=secret.delete`);
    expect(only.body.items.length).toBeGreaterThan(0);
    expect(only.body.items.every((e: { action: string }) => e.action === 'secret.delete')).toBe(true);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await api.get(`${base}/admin-audit?since=${future}`)).body.items).toEqual([]);
    expect((await api.get(`${base}/admin-audit?until=2000-01-01T00:00:00Z`)).body.items).toEqual([]);
    const dev = await api.get(`${base}/admin-audit?limit=500`, { token: f.own.developerToken });
    expect(dev.body.items.every((e: { tenantId: string }) => e.tenantId === f.own.id)).toBe(true);
    expectProblem(await api.get('/admin/v1/admin-audit', { token: f.own.adminToken }), 403, 'KG_FORBIDDEN');
    const all = await api.get('/admin/v1/admin-audit?limit=500');
    expect(all.body.items.some((e: { tenantId: string | null }) => e.tenantId === f.other.id)).toBe(true);
  });
});

describe('inbound audit log', () => {
  const rows: NewAuditLogRow[] = [];
  beforeAll(async () => {
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const outcomes = ['ok', 'bad_signature', 'rate_limited', 'ok', 'upstream_error'] as const;
    for (let i = 0; i < 25; i++) {
      const tenant = i % 5 === 4 ? f.other.id : f.own.id;
      rows.push({
        request_id: `req_test_${String(i).padStart(3, '0')}`,
        tenant_id: tenant,
        key_id: i % 2 ? 'pk_a' : 'pk_b',
        secret_version: 1,
        client_ip: '10.0.0.1',
        method: 'POST',
        path: '/orders',
        query: '',
        request_headers: JSON.stringify({ 'x-api-key': 'pk_a', 'x-signature': '[redacted]' }),
        request_body: `{"n":${i}}`,
        request_body_truncated: 0,
        response_status: 200,
        response_headers: '{}',
        response_body: '{}',
        response_body_truncated: 0,
        latency_ms: 3,
        outcome: outcomes[i % outcomes.length]!,
        // Three rows share each timestamp, so the cursor must break ties by request id.
        created_at: toDbTime(t0 + Math.floor(i / 3) * 60_000),
      });
    }
    await f.gw.services.db.insertInto('audit_log').values(rows).execute();
  });

  it("pages through a tenant's rows newest first, with ties broken stably", async () => {
    const mine = rows.filter((r) => r.tenant_id === f.own.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api.get(`${base}/audit-log?limit=4${cursor ? `&cursor=${cursor}` : ''}`, {
        token: f.own.developerToken,
      });
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((e: { requestId: string }) => e.requestId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(mine.length);
    expect(new Set(seen)).toEqual(new Set(mine.map((r) => r.request_id)));
    expect(seen.slice(0, 3)).toEqual(['req_test_023', 'req_test_022', 'req_test_021']);
  });

  it('filters by key id, outcome and time', async () => {
    const byKey = await api.get(`${base}/audit-log?keyId=pk_a&limit=100`);
    expect(byKey.body.items.length).toBe(
      rows.filter((r) => r.tenant_id === f.own.id && r.key_id === 'pk_a').length,
    );
    const byOutcome = await api.get(`${base}/audit-log?outcome=bad_signature`);
    expect(byOutcome.body.items.map((e: { outcome: string }) => e.outcome)).toEqual([
      'bad_signature',
      'bad_signature',
      'bad_signature',
      'bad_signature',
      'bad_signature',
    ]);
    const window = await api.get(`${base}/audit-log?since=2026-01-01T00:01:00Z&until=2026-01-01T00:02:00Z`);
    expect(window.body.items.map((e: { requestId: string }) => e.requestId).sort()).toEqual([
      'req_test_003',
      'req_test_005',
    ]);
    expectProblem(await api.get(`${base}/audit-log?outcome=great`), 400, 'KG_VALIDATION_FAILED');
  });

  it('shows one entry in full, only inside its tenant', async () => {
    const entry = await api.get(`${base}/audit-log/req_test_001`, { token: f.own.adminToken });
    expect(entry.body).toMatchObject({
      requestId: 'req_test_001',
      requestBody: '{"n":1}',
      requestHeaders: { 'x-signature': '[redacted]' },
    });
    expect((await api.get(`${base}/audit-log/req_test_004`, { token: f.own.adminToken })).status).toBe(404);
    expect((await api.get('/admin/v1/audit-log/req_test_004')).body.tenantId).toBe(f.other.id);
    const everything = await api.get('/admin/v1/audit-log?limit=100');
    expect(everything.body.items).toHaveLength(25);
    expectProblem(await api.get('/admin/v1/audit-log', { token: f.own.adminToken }), 403, 'KG_FORBIDDEN');
  });
});

describe('partner keys and inbound routes', () => {
  it('creates a key (secret shown once), lists, rotates, retires a secret and revokes', async () => {
    const created = await api.post(
      `${base}/partner-keys`,
      { name: 'partner-one', algorithm: 'gcra', rate: 5, periodSeconds: 1, burst: 10 },
      { token: f.own.adminToken },
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      keyId: expect.stringMatching(/^pk_/),
      secretVersion: 1,
      policy: { algorithm: 'gcra', rate: 5 },
    });
    const { keyId, secret } = created.body;
    const list = await api.get(`${base}/partner-keys`);
    expect(list.text).toContain(keyId);
    expect(list.text).not.toContain(secret);
    const rotated = await api.post(`${base}/partner-keys/${keyId}/rotate`);
    expect(rotated.body).toMatchObject({ secretVersion: 2, liveSecretVersions: [1, 2] });
    const retired = await api.post(`${base}/partner-keys/${keyId}/retire-secret`, {});
    expect(retired.body).toMatchObject({ retiredVersion: 1, liveSecretVersions: [2] });
    const revoked = await api.delete(`${base}/partner-keys/${keyId}`);
    expect(revoked.body.status).toBe('revoked');
    expectProblem(
      await api.post(`${base}/partner-keys`, { name: 'x', rate: 0 }),
      400,
      'KG_VALIDATION_FAILED',
    );
    expectProblem(
      await api.get(`${base}/partner-keys`, { token: f.own.developerToken }),
      403,
      'KG_FORBIDDEN',
    );
  });

  it("changes a key's rate-limit policy with PATCH; bad values name their field, an unknown key is 404", async () => {
    const created = await api.post(
      `${base}/partner-keys`,
      { name: 'partner-policy', rate: 5, burst: 10 },
      { token: f.own.adminToken },
    );
    const { keyId } = created.body;
    const patch = (id: string, json: unknown) =>
      api.request('PATCH', `${base}/partner-keys/${id}`, { json, token: f.own.adminToken });

    const changed = await patch(keyId, { algorithm: 'gcra', burst: 4 });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body).toMatchObject({
      keyId,
      liveSecretVersions: [1],
      policy: { algorithm: 'gcra', rate: 5, periodSeconds: 1, burst: 4, onRedisDown: 'local' },
    });
    const listed = (await api.get(`${base}/partner-keys`)).body.items.find(
      (k: { keyId: string }) => k.keyId === keyId,
    );
    expect(listed.policy).toEqual(changed.body.policy);
    const audit = await api.get(`${base}/admin-audit?action=partner-key.set-policy`);
    expect(audit.body.items[0]).toMatchObject({
      targetId: keyId,
      actor: { kind: 'admin', role: 'tenant_admin' },
      before: { policy: { algorithm: 'token-bucket', burst: 10 } },
      after: { policy: { algorithm: 'gcra', burst: 4 } },
    });

    const bad = await patch(keyId, { burst: 0, onRedisDown: 'panic' });
    expectProblem(bad, 400, 'KG_VALIDATION_FAILED');
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['burst', 'onRedisDown']);
    expect(bad.body.errors.every((e: { in: string }) => e.in === 'body')).toBe(true);
    // Fields valid one by one can still make a policy the limiters refuse.
    const tooBig = await patch(keyId, { periodSeconds: 86_400, burst: 100_000 });
    expectProblem(tooBig, 400, 'KG_VALIDATION_FAILED');
    expect(tooBig.body.errors).toEqual([expect.objectContaining({ path: 'burst' })]);
    expectProblem(await patch(keyId, {}), 400, 'KG_VALIDATION_FAILED');
    expect((await api.get(`${base}/partner-keys`)).text).not.toContain('"burst":100000');

    expectProblem(await patch('pk_nope', { burst: 5 }), 404, 'KG_NOT_FOUND');
    const otherKey = await api.post(`/admin/v1/tenants/${f.other.name}/partner-keys`, { name: 'theirs' });
    expectProblem(await patch(otherKey.body.keyId, { burst: 5 }), 404, 'KG_NOT_FOUND');
    await api.delete(`${base}/partner-keys/${keyId}`);
    expectProblem(await patch(keyId, { burst: 5 }), 409, 'KG_CONFLICT');
  });

  it('gives keys scopes at creation and replaces them with PUT .../scopes; routes take a scope rule', async () => {
    const created = await api.post(`${base}/partner-keys`, {
      name: 'scoped',
      scopes: ['b:read', 'a:read', 'a:read'],
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.scopes).toEqual(['a:read', 'b:read']);
    const path = `${base}/partner-keys/${created.body.keyId}/scopes`;
    const replaced = await api.put(path, { scopes: ['c:write'] }, { token: f.own.adminToken });
    expect(replaced.status, replaced.text).toBe(200);
    expect(replaced.body.scopes).toEqual(['c:write']);
    expect((await api.put(path, { scopes: [] })).body.scopes).toEqual([]);
    const bad = await api.put(path, { scopes: ['no spaces'] });
    expectProblem(bad, 400, 'KG_VALIDATION_FAILED');
    expect(bad.body.errors[0].path).toBe('scopes');
    expectProblem(
      await api.put(path, { scopes: ['x'] }, { token: f.own.developerToken }),
      403,
      'KG_FORBIDDEN',
    );
    const audit = await api.get(`${base}/admin-audit?action=partner-key.set-scopes`);
    expect(audit.body.items[0]).toMatchObject({ before: { scopes: ['c:write'] }, after: { scopes: [] } });

    const route = await api.post(`${base}/routes`, {
      prefix: '/scoped',
      upstream: 'http://orders.internal:8000',
      scopes: ['a:read'],
    });
    expect(route.status, route.text).toBe(201);
    // No key by id: stored as an empty list, so a node without scopes refuses instead of admitting all.
    expect(route.body).toMatchObject({ keyIds: [], scopes: ['a:read'] });
    expect((await api.delete(`${base}/routes/${route.body.id}`)).status).toBe(204);
  });

  it('adds, lists and removes inbound routes', async () => {
    const added = await api.post(`${base}/routes`, {
      prefix: '/orders',
      upstream: 'http://orders.internal:8000',
      timeoutMs: 2000,
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ prefix: '/orders', timeoutMs: 2000, keyIds: null, scopes: null });
    expectProblem(
      await api.post(`${base}/routes`, { prefix: '/orders', upstream: 'http://x.internal' }),
      409,
      'KG_CONFLICT',
    );
    const bad = await api.post(`${base}/routes`, { prefix: 'orders', upstream: 'ftp://x' });
    expectProblem(bad, 400, 'KG_VALIDATION_FAILED');
    expect((await api.get(`${base}/routes`)).body.items.map((r: { prefix: string }) => r.prefix)).toEqual([
      '/orders',
    ]);
    expect((await api.delete(`${base}/routes/${added.body.id}`)).status).toBe(204);
  });
});

describe('secrecy', () => {
  it('never returned the canary secret in any response body or header of this suite', () => {
    expect(f.api.recorded.length).toBeGreaterThan(80);
    f.assertNoCanaryLeak();
  });

  it('the scan would catch a leak', () => {
    f.api.recorded.push({
      method: 'GET',
      path: '/probe',
      status: 200,
      headers: {},
      text: Buffer.from(f.canary).toString('base64'),
    });
    expect(() => f.assertNoCanaryLeak()).toThrow(/canary leaked/);
    f.api.recorded.pop();
  });
});
