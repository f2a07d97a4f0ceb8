/**
 * The CLI and the admin API share one service layer: a token the CLI mints works on the API and
 * dies when the CLI revokes it; drafts, diffs, activation conflicts and script validation answer
 * the same way from both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from './helpers/admin.ts';
import { runKeygateInProcess } from './helpers/cli.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';

let gw: TestGateway;
let dir: string;
let api: AdminClient;

const cli = (...argv: string[]) => runKeygateInProcess(argv, gw.env);

beforeAll(async () => {
  gw = await startTestGateway({ dialect: 'sqlite', roles: ['admin'] });
  dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-admin-cli-'));
  api = new AdminClient(gw.adminUrl);
});

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('CLI and admin API on one service layer', () => {
  let root: string;
  let tenant: string;

  it('bootstraps the first gateway_admin token from the CLI; token list / revoke manage it', async () => {
    const created = await cli('token', 'create', '--role', 'gateway_admin', '--name', 'root', '--json');
    expect(created.code, created.stderr).toBe(0);
    root = JSON.parse(created.stdout).token;
    expect((await api.get('/admin/v1/me', { token: root })).body.role).toBe('gateway_admin');

    const spare = JSON.parse(
      (await cli('token', 'create', '--role', 'gateway_admin', '--name', 'spare', '--json')).stdout,
    );
    const list = await cli('token', 'list', '--json');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).items.map((t: { id: string }) => t.id)).toEqual(
      expect.arrayContaining([spare.id]),
    );
    expect(list.stdout).not.toContain(spare.token);

    const revoked = await cli('token', 'revoke', spare.id, '--json');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await api.get('/admin/v1/me', { token: spare.token })).body.code).toBe('KG_TOKEN_EXPIRED');
    const again = await cli('token', 'revoke', spare.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('KG_ALREADY_REVOKED');
    const unknown = await cli('token', 'revoke', 'atk_nope', '--json');
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stderr).error.code).toBe('KG_NOT_FOUND');
  });

  it('tenant members made on the API are listed and revoked from the CLI', async () => {
    tenant = (await api.post('/admin/v1/tenants', { name: 'cli-tenant' }, { token: root })).body.name;
    const member = (
      await api.post(
        `/admin/v1/tenants/${tenant}/members`,
        { name: 'dev', role: 'tenant_developer' },
        { token: root },
      )
    ).body;
    const list = JSON.parse((await cli('token', 'list', '--tenant', tenant, '--json')).stdout);
    expect(list.items).toEqual([
      expect.objectContaining({ id: member.id, role: 'tenant_developer', status: 'active' }),
    ]);
    expect((await cli('token', 'revoke', '--tenant', tenant, member.id)).code).toBe(0);
    expect((await api.get('/admin/v1/me', { token: member.token })).status).toBe(401);

    const svc = JSON.parse(
      (await cli('service-token', 'create', '--tenant', tenant, '--name', 'svc', '--json')).stdout,
    );
    expect(
      JSON.parse((await cli('service-token', 'list', '--tenant', tenant, '--json')).stdout).items,
    ).toHaveLength(1);
    expect((await cli('service-token', 'revoke', '--tenant', tenant, svc.id)).code).toBe(0);
    const twice = await cli('service-token', 'revoke', '--tenant', tenant, svc.id, '--json');
    expect(twice.code).toBe(1);
    expect(JSON.parse(twice.stderr).error.code).toBe('KG_ALREADY_REVOKED');
    const listed = (await api.get(`/admin/v1/tenants/${tenant}/service-tokens`, { token: root })).body.items;
    expect(listed).toEqual([expect.objectContaining({ id: svc.id, status: 'revoked' })]);
  });

  it('answers a second revocation or retirement of a partner key or secret as the API does', async () => {
    const key = JSON.parse(
      (await cli('partner-key', 'create', '--tenant', tenant, '--name', 'twice', '--json')).stdout,
    );
    expect((await cli('partner-key', 'rotate', '--tenant', tenant, key.keyId)).code).toBe(0);
    const retire = () =>
      cli('partner-key', 'retire-secret', '--tenant', tenant, key.keyId, '--version', '1', '--json');
    expect((await retire()).code).toBe(0);
    const retiredTwice = await retire();
    expect(retiredTwice.code).toBe(1);
    expect(JSON.parse(retiredTwice.stderr).error.code).toBe('KG_ALREADY_REVOKED');
    expect((await cli('partner-key', 'revoke', '--tenant', tenant, key.keyId)).code).toBe(0);
    const revokedTwice = await cli('partner-key', 'revoke', '--tenant', tenant, key.keyId, '--json');
    expect(revokedTwice.code).toBe(1);
    expect(JSON.parse(revokedTwice.stderr).error.code).toBe('KG_ALREADY_REVOKED');
    const viaApi = await api.delete(`/admin/v1/tenants/${tenant}/partner-keys/${key.keyId}`, { token: root });
    expect({ status: viaApi.status, code: viaApi.body.code }).toEqual({
      status: 409,
      code: 'KG_ALREADY_REVOKED',
    });
  });

  it('drafts, diffs and activates with the optimistic check, like the API', async () => {
    const file = path.join(dir, 'provider.json');
    writeFileSync(file, JSON.stringify({ name: 'cli-p', mode: 'simple', prefixUrl: 'http://127.0.0.1:9/a' }));
    expect((await cli('provider', 'apply', '--tenant', tenant, '-f', file, '--draft')).code).toBe(0);
    writeFileSync(file, JSON.stringify({ name: 'cli-p', mode: 'simple', prefixUrl: 'http://127.0.0.1:9/b' }));
    expect((await cli('provider', 'apply', '--tenant', tenant, '-f', file, '--draft')).code).toBe(0);

    const diff = await cli('provider', 'diff', '--tenant', tenant, 'cli-p', '1', '2');
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toContain('-  "prefixUrl": "http://127.0.0.1:9/a",');
    expect(diff.stdout).toContain('+  "prefixUrl": "http://127.0.0.1:9/b",');
    const viaApi = await api.get(`/admin/v1/tenants/${tenant}/providers/cli-p/diff?from=1&to=2`, {
      token: root,
    });
    expect(`${viaApi.body.unified}`).toBe(diff.stdout);

    const stale = await cli(
      'provider',
      'activate',
      '--tenant',
      tenant,
      'cli-p',
      '2',
      '--expected-revision',
      '5',
    );
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('KG_VERSION_CONFLICT');
    const ok = await cli(
      'provider',
      'activate',
      '--tenant',
      tenant,
      'cli-p',
      '2',
      '--expected-revision',
      '0',
      '--json',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ provider: 'cli-p', activeVersion: 2, revision: 1 });
    expect(
      (await api.get(`/admin/v1/tenants/${tenant}/providers/cli-p`, { token: root })).body.activeVersion,
    ).toBe(2);
    const audit = (
      await api.get(`/admin/v1/tenants/${tenant}/admin-audit?action=provider.activate`, { token: root })
    ).body.items;
    expect(audit[0]).toMatchObject({ actor: { kind: 'cli' }, after: { activeVersion: 2 } });
  });

  it('validates a script file and points at the syntax error', async () => {
    const good = path.join(dir, 'good.js');
    const bad = path.join(dir, 'bad.js');
    writeFileSync(good, 'function (reqHeaders) {\n  reqHeaders.set("a", "b");\n}\n');
    writeFileSync(bad, 'function (reqHeaders) {\n  let x = ;\n}\n');
    expect((await cli('script', 'validate', '--tenant', tenant, '-f', good)).code).toBe(0);
    const res = await cli('script', 'validate', '--tenant', tenant, '-f', bad, '--json');
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({
      valid: false,
      error: { code: 'KG_SCRIPT_SYNTAX', line: 2 },
    });
  });

  it('lists the new commands in --help', async () => {
    const help = await cli('--help');
    for (const name of [
      'token list',
      'token revoke',
      'service-token revoke',
      'provider activate',
      'provider diff',
      'script validate',
    ]) {
      expect(help.stdout).toContain(name);
    }
  });
});
