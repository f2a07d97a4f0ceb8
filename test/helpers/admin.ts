/**
 * Admin API test fixture: a real keygate, two tenants with a provider each, one admin token per
 * role, an expired and a revoked token, and a canary secret set through the API. Every response
 * the client receives is recorded, so a suite can prove at the end that the canary (raw, base64
 * or hex) never came back in any body or header.
 */
import { expect } from 'vitest';
import { CLI_ACTOR } from '../../src/cli/context.ts';
import { applyProviderVersion } from '../../src/services/providers.ts';
import { setSecret } from '../../src/services/secrets.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { createAdminToken, revokeAdminToken } from '../../src/services/tokens.ts';
import type { DbDialect } from '../../src/storage/db.ts';
import { toDbTime } from '../../src/storage/db.ts';
import { type GatewayOptions, startTestGateway, type TestGateway } from './gateway.ts';
import { json, startUpstream, type TestUpstream } from './upstream.ts';

export interface RecordedResponse {
  method: string;
  path: string;
  status: number;
  headers: Record<string, string>;
  text: string;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  body: any;
}

export interface RequestOptions {
  token?: string | null;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
}

/** A fetch wrapper around the admin listener that records every response. */
export class AdminClient {
  readonly baseUrl: string;
  readonly recorded: RecordedResponse[];
  private readonly defaultToken: string | null;

  constructor(baseUrl: string, defaultToken: string | null = null, recorded: RecordedResponse[] = []) {
    this.baseUrl = baseUrl;
    this.defaultToken = defaultToken;
    this.recorded = recorded;
  }

  /** Another view of the same listener, with another token, sharing one recording. */
  withToken(token: string | null): AdminClient {
    return new AdminClient(this.baseUrl, token, this.recorded);
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? this.defaultToken : opts.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    this.recorded.push({ method, path, status: res.status, headers: Object.fromEntries(res.headers), text });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  }

  get = (path: string, opts?: RequestOptions) => this.request('GET', path, opts);
  post = (path: string, json?: unknown, opts?: RequestOptions) =>
    this.request('POST', path, { ...opts, json });
  put = (path: string, json?: unknown, opts?: RequestOptions) => this.request('PUT', path, { ...opts, json });
  delete = (path: string, opts?: RequestOptions) => this.request('DELETE', path, opts);
}

export interface TenantFixture {
  id: string;
  name: string;
  adminToken: string;
  adminTokenId: string;
  developerToken: string;
  developerTokenId: string;
}

export interface AdminFixture {
  gw: TestGateway;
  upstream: TestUpstream;
  api: AdminClient;
  gatewayToken: string;
  own: TenantFixture;
  other: TenantFixture;
  expiredToken: string;
  revokedToken: string;
  /** Set via PUT .../secrets/AppSecret on both tenants' provider; must never come back. */
  canary: string;
  provider: string;
  /** Asserts the canary is in no recorded response body or header, in any common encoding. */
  assertNoCanaryLeak(): void;
  close(): Promise<void>;
}

export const PROVIDER = 'acme-pay';

export function providerConfig(
  prefixUrl: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { name: PROVIDER, mode: 'simple', prefixUrl, ...extra };
}

let seq = 0;

export async function startAdminFixture(
  opts: { dialect?: DbDialect } & Pick<GatewayOptions, 'redis'> = {},
): Promise<AdminFixture> {
  const upstream = await startUpstream((req, res) =>
    json(res, 200, { ok: true, echo: req.body.toString('utf8') }),
  );
  // A failed set-up step (an expect included) must not leave the gateway and upstream running.
  let started: TestGateway | undefined;
  try {
    const gw = await startTestGateway({ dialect: opts.dialect ?? 'sqlite', redis: opts.redis });
    started = gw;
    const { ctx } = gw.services;
    const suffix = `${process.pid}x${++seq}x${Date.now() % 100000}`;
    const gateway = await createAdminToken(ctx, CLI_ACTOR, { role: 'gateway_admin', name: 'root' });

    const makeTenant = async (label: string): Promise<TenantFixture> => {
      const tenant = await createTenant(ctx, CLI_ACTOR, { name: `${label}-${suffix}` });
      await applyProviderVersion(ctx, CLI_ACTOR, { tenant: tenant.id, config: providerConfig(upstream.url) });
      await setSecret(ctx, CLI_ACTOR, {
        tenant: tenant.id,
        provider: PROVIDER,
        name: 'AppKey',
        value: `appkey-${label}`,
      });
      const admin = await createAdminToken(ctx, CLI_ACTOR, {
        tenant: tenant.id,
        role: 'tenant_admin',
        name: 'admin',
      });
      const dev = await createAdminToken(ctx, CLI_ACTOR, {
        tenant: tenant.id,
        role: 'tenant_developer',
        name: 'dev',
      });
      return {
        id: tenant.id,
        name: tenant.name,
        adminToken: admin.token,
        adminTokenId: admin.id,
        developerToken: dev.token,
        developerTokenId: dev.id,
      };
    };
    const own = await makeTenant('own');
    const other = await makeTenant('other');

    const expired = await createAdminToken(ctx, CLI_ACTOR, {
      tenant: own.id,
      role: 'tenant_admin',
      name: 'expired',
    });
    await ctx.db
      .updateTable('admin_tokens')
      .set({ expires_at: toDbTime(Date.now() - 60_000) })
      .where('id', '=', expired.id)
      .execute();
    const revoked = await createAdminToken(ctx, CLI_ACTOR, {
      tenant: own.id,
      role: 'tenant_admin',
      name: 'revoked',
    });
    await revokeAdminToken(ctx, CLI_ACTOR, { tenant: own.id, id: revoked.id });

    const api = new AdminClient(gw.adminUrl, gateway.token);
    const canary = `CANARY-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-s3cr3t`;
    for (const t of [own, other]) {
      const res = await api.put(`/admin/v1/tenants/${t.name}/providers/${PROVIDER}/secrets/AppSecret`, {
        value: canary,
      });
      expect(res.status).toBe(201);
    }

    return {
      gw,
      upstream,
      api,
      gatewayToken: gateway.token,
      own,
      other,
      expiredToken: expired.token,
      revokedToken: revoked.token,
      canary,
      provider: PROVIDER,
      assertNoCanaryLeak() {
        const forms = [
          canary,
          Buffer.from(canary).toString('base64'),
          Buffer.from(canary).toString('hex'),
          encodeURIComponent(canary),
        ];
        expect(api.recorded.length).toBeGreaterThan(0);
        for (const r of api.recorded) {
          const haystack = `${r.text}\n${JSON.stringify(r.headers)}`;
          for (const form of forms) {
            if (haystack.includes(form) || haystack.toLowerCase().includes(form.toLowerCase())) {
              throw new Error(`canary leaked in ${r.method} ${r.path} (${r.status})`);
            }
          }
        }
      },
      async close() {
        await gw.close();
        await upstream.close();
      },
    };
  } catch (err) {
    await started?.close().catch(() => {});
    await upstream.close().catch(() => {});
    throw err;
  }
}
