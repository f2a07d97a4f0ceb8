/**
 * The role matrix, table-driven, on MariaDB: every admin route (taken from the served OpenAPI
 * document, so a new route cannot escape) x gateway_admin / tenant_admin / tenant_developer x own
 * tenant / other tenant, plus no token and an expired token, against the expectation written here
 * from DESIGN.md "Roles" (independently of PERMISSIONS in src/services/actor.ts). Zero wrong answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/cli/context.ts';
import { createPartnerKey, rotatePartnerKey } from '../src/services/partner-keys.ts';
import { addRoute } from '../src/services/routes.ts';
import { setSecret } from '../src/services/secrets.ts';
import { createAdminToken, createServiceToken } from '../src/services/tokens.ts';
import { toDbTime } from '../src/storage/db.ts';
import type { AdminRole } from '../src/storage/schema.ts';
import {
  type AdminFixture,
  PROVIDER,
  providerConfig,
  startAdminFixture,
  type TenantFixture,
} from './helpers/admin.ts';

const GA: AdminRole = 'gateway_admin';
const TA: AdminRole = 'tenant_admin';
const TD: AdminRole = 'tenant_developer';
const EVERY_ROLE = [GA, TA, TD];
const ADMINS = [GA, TA];
const GATEWAY_ONLY = [GA];

interface Prepared {
  /** Values for path parameters other than {tenant} and {provider}. */
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
}

interface RouteExpectation {
  /** Roles that may call the route (for tenant routes: on their own tenant only). */
  allowed: AdminRole[];
  success: number;
  /** Builds a fresh target in tenant `t` before each call (ids, bodies), through the services. */
  prepare?: (t: TenantFixture) => Promise<Prepared> | Prepared;
}

let f: AdminFixture;
let n = 0;
const next = () => ++n;
const requestIds = new Map<string, string>();

/** DESIGN.md "Roles", route by route. */
const MATRIX: Record<string, RouteExpectation> = {
  'GET /admin/v1/me': { allowed: EVERY_ROLE, success: 200 },
  'GET /admin/v1/tenants': { allowed: EVERY_ROLE, success: 200 },
  'POST /admin/v1/tenants': {
    allowed: GATEWAY_ONLY,
    success: 201,
    prepare: () => ({ body: { name: `m-${next()}-${Date.now() % 1e6}` } }),
  },
  'GET /admin/v1/tenants/{tenant}': { allowed: EVERY_ROLE, success: 200 },

  'GET /admin/v1/tenants/{tenant}/members': { allowed: ADMINS, success: 200 },
  'POST /admin/v1/tenants/{tenant}/members': {
    allowed: ADMINS,
    success: 201,
    prepare: () => ({ body: { name: `member-${next()}`, role: 'tenant_developer', expiresInSeconds: 3600 } }),
  },
  'DELETE /admin/v1/tenants/{tenant}/members/{tokenId}': {
    allowed: ADMINS,
    success: 204,
    prepare: async (t) => {
      const tok = await createAdminToken(f.gw.services.ctx, CLI_ACTOR, {
        tenant: t.id,
        role: TD,
        name: `victim-${next()}`,
      });
      return { params: { tokenId: tok.id } };
    },
  },
  'GET /admin/v1/admin-tokens': { allowed: GATEWAY_ONLY, success: 200 },
  'POST /admin/v1/admin-tokens': {
    allowed: GATEWAY_ONLY,
    success: 201,
    prepare: () => ({ body: { name: `gw-${next()}` } }),
  },
  'DELETE /admin/v1/admin-tokens/{tokenId}': {
    allowed: GATEWAY_ONLY,
    success: 204,
    prepare: async () => {
      const tok = await createAdminToken(f.gw.services.ctx, CLI_ACTOR, {
        role: GA,
        name: `gw-victim-${next()}`,
      });
      return { params: { tokenId: tok.id } };
    },
  },

  'GET /admin/v1/tenants/{tenant}/service-tokens': { allowed: ADMINS, success: 200 },
  'POST /admin/v1/tenants/{tenant}/service-tokens': {
    allowed: ADMINS,
    success: 201,
    prepare: () => ({ body: { name: `svc-${next()}` } }),
  },
  'DELETE /admin/v1/tenants/{tenant}/service-tokens/{tokenId}': {
    allowed: ADMINS,
    success: 204,
    prepare: async (t) => {
      const tok = await createServiceToken(f.gw.services.ctx, CLI_ACTOR, {
        tenant: t.id,
        name: `svc-victim-${next()}`,
      });
      return { params: { tokenId: tok.id } };
    },
  },

  'GET /admin/v1/tenants/{tenant}/providers': { allowed: EVERY_ROLE, success: 200 },
  'GET /admin/v1/tenants/{tenant}/providers/{provider}': { allowed: EVERY_ROLE, success: 200 },
  'GET /admin/v1/tenants/{tenant}/providers/{provider}/versions': { allowed: EVERY_ROLE, success: 200 },
  'POST /admin/v1/tenants/{tenant}/providers/{provider}/versions': {
    allowed: EVERY_ROLE,
    success: 201,
    prepare: () => ({ body: providerConfig(f.upstream.url, { description: `draft ${next()}` }) }),
  },
  'GET /admin/v1/tenants/{tenant}/providers/{provider}/versions/{version}': {
    allowed: EVERY_ROLE,
    success: 200,
    prepare: () => ({ params: { version: '1' } }),
  },
  'GET /admin/v1/tenants/{tenant}/providers/{provider}/diff': {
    allowed: EVERY_ROLE,
    success: 200,
    prepare: () => ({ query: 'from=1&to=active' }),
  },
  'POST /admin/v1/tenants/{tenant}/providers/{provider}/activate': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => ({ body: { version: 1, expectedRevision: await revisionOf(t) } }),
  },
  'POST /admin/v1/tenants/{tenant}/providers/{provider}/rollback': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => ({ body: { to: 1, expectedRevision: await revisionOf(t) } }),
  },
  'POST /admin/v1/tenants/{tenant}/providers/{provider}/dry-run': {
    allowed: EVERY_ROLE,
    success: 200,
    prepare: () => ({ body: { request: { method: 'POST', path: '/orders', body: { n: 1 } } } }),
  },
  'POST /admin/v1/tenants/{tenant}/scripts/validate': {
    allowed: EVERY_ROLE,
    success: 200,
    prepare: () => ({
      body: { kind: 'request', source: 'function (reqHeaders) {\n  reqHeaders.set("a", "b");\n}' },
    }),
  },

  'GET /admin/v1/tenants/{tenant}/secrets': { allowed: ADMINS, success: 200 },
  'GET /admin/v1/tenants/{tenant}/providers/{provider}/secrets': { allowed: ADMINS, success: 200 },
  'PUT /admin/v1/tenants/{tenant}/providers/{provider}/secrets/{name}': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => {
      await setSecret(f.gw.services.ctx, CLI_ACTOR, {
        tenant: t.id,
        provider: PROVIDER,
        name: 'Matrix',
        value: 'before',
      });
      return { params: { name: 'Matrix' }, body: { value: `matrix-${next()}` } };
    },
  },
  'DELETE /admin/v1/tenants/{tenant}/providers/{provider}/secrets/{name}': {
    allowed: ADMINS,
    success: 204,
    prepare: async (t) => {
      const name = `Doomed${next()}`;
      await setSecret(f.gw.services.ctx, CLI_ACTOR, { tenant: t.id, provider: PROVIDER, name, value: 'x' });
      return { params: { name } };
    },
  },

  'GET /admin/v1/tenants/{tenant}/partner-keys': { allowed: ADMINS, success: 200 },
  'POST /admin/v1/tenants/{tenant}/partner-keys': {
    allowed: ADMINS,
    success: 201,
    prepare: () => ({ body: { name: `pk-${next()}` } }),
  },
  'PATCH /admin/v1/tenants/{tenant}/partner-keys/{keyId}': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => ({ params: { keyId: (await newPartnerKey(t)).keyId }, body: { burst: 5 } }),
  },
  'PUT /admin/v1/tenants/{tenant}/partner-keys/{keyId}/scopes': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => ({
      params: { keyId: (await newPartnerKey(t)).keyId },
      body: { scopes: ['orders:read'] },
    }),
  },
  'POST /admin/v1/tenants/{tenant}/partner-keys/{keyId}/rotate': {
    allowed: ADMINS,
    success: 201,
    prepare: async (t) => ({ params: { keyId: (await newPartnerKey(t)).keyId } }),
  },
  'POST /admin/v1/tenants/{tenant}/partner-keys/{keyId}/retire-secret': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => {
      const key = await newPartnerKey(t);
      await rotatePartnerKey(f.gw.services.ctx, CLI_ACTOR, { tenant: t.id, keyId: key.keyId });
      return { params: { keyId: key.keyId }, body: {} };
    },
  },
  'DELETE /admin/v1/tenants/{tenant}/partner-keys/{keyId}': {
    allowed: ADMINS,
    success: 200,
    prepare: async (t) => ({ params: { keyId: (await newPartnerKey(t)).keyId } }),
  },
  'GET /admin/v1/tenants/{tenant}/routes': { allowed: ADMINS, success: 200 },
  'POST /admin/v1/tenants/{tenant}/routes': {
    allowed: ADMINS,
    success: 201,
    prepare: () => ({ body: { prefix: `/matrix-${next()}`, upstream: 'http://svc.internal:8000' } }),
  },
  'DELETE /admin/v1/tenants/{tenant}/routes/{routeId}': {
    allowed: ADMINS,
    success: 204,
    prepare: async (t) => {
      const route = await addRoute(f.gw.services.ctx, CLI_ACTOR, {
        tenant: t.id,
        prefix: `/gone-${next()}`,
        upstream: 'http://svc.internal',
      });
      return { params: { routeId: route.id } };
    },
  },

  'GET /admin/v1/tenants/{tenant}/admin-audit': { allowed: EVERY_ROLE, success: 200 },
  'GET /admin/v1/tenants/{tenant}/audit-log': { allowed: EVERY_ROLE, success: 200 },
  'GET /admin/v1/tenants/{tenant}/audit-log/{requestId}': {
    allowed: EVERY_ROLE,
    success: 200,
    prepare: (t) => ({ params: { requestId: requestIds.get(t.id)! } }),
  },
  'GET /admin/v1/admin-audit': { allowed: GATEWAY_ONLY, success: 200 },
  'GET /admin/v1/audit-log': { allowed: GATEWAY_ONLY, success: 200 },
  'GET /admin/v1/audit-log/{requestId}': {
    allowed: GATEWAY_ONLY,
    success: 200,
    prepare: () => ({ params: { requestId: requestIds.get(f.own.id)! } }),
  },
};

async function revisionOf(t: TenantFixture): Promise<number> {
  const row = await f.gw.services.db
    .selectFrom('providers')
    .select('revision')
    .where('tenant_id', '=', t.id)
    .where('name', '=', PROVIDER)
    .executeTakeFirstOrThrow();
  return Number(row.revision);
}

function newPartnerKey(t: TenantFixture) {
  return createPartnerKey(f.gw.services.ctx, CLI_ACTOR, { tenant: t.id, name: `pk-victim-${next()}` });
}

interface Caller {
  label: string;
  token: string | null;
  role: AdminRole | null;
  /** The caller's own tenant (null for gateway admins and anonymous callers). */
  tenant: TenantFixture | null;
  expect?: { status: number; code: string };
}

beforeAll(async () => {
  f = await startAdminFixture({ dialect: 'mysql' });
  for (const t of [f.own, f.other]) {
    const requestId = `req_matrix_${t.id}`;
    requestIds.set(t.id, requestId);
    await f.gw.services.db
      .insertInto('audit_log')
      .values({
        request_id: requestId,
        tenant_id: t.id,
        key_id: 'pk_matrix',
        secret_version: 1,
        client_ip: '10.1.1.1',
        method: 'GET',
        path: '/orders',
        query: '',
        request_headers: '{}',
        request_body: '',
        request_body_truncated: 0,
        response_status: 200,
        response_headers: '{}',
        response_body: '{}',
        response_body_truncated: 0,
        latency_ms: 1,
        outcome: 'ok',
        created_at: toDbTime(),
      })
      .execute();
  }
});

afterAll(async () => {
  await f?.close();
});

describe('role matrix', () => {
  let operations: Array<{ method: string; path: string }> = [];

  beforeAll(async () => {
    const doc = (await f.api.get('/admin/openapi.json', { token: null })).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => ({ method: method.toUpperCase(), path })),
    );
  });

  it('has an expectation for exactly the routes the OpenAPI document lists', () => {
    expect(operations.map((o) => `${o.method} ${o.path}`).sort()).toEqual(Object.keys(MATRIX).sort());
  });

  it('gives every route x role x tenant, no token and an expired token the expected answer', async () => {
    const callers: Caller[] = [
      { label: 'gateway_admin', token: f.gatewayToken, role: GA, tenant: null },
      { label: 'tenant_admin', token: f.own.adminToken, role: TA, tenant: f.own },
      { label: 'tenant_developer', token: f.own.developerToken, role: TD, tenant: f.own },
      {
        label: 'no token',
        token: null,
        role: null,
        tenant: null,
        expect: { status: 401, code: 'KG_UNAUTHENTICATED' },
      },
      {
        label: 'expired token',
        token: f.expiredToken,
        role: null,
        tenant: null,
        expect: { status: 401, code: 'KG_TOKEN_EXPIRED' },
      },
      {
        label: 'revoked token',
        token: f.revokedToken,
        role: null,
        tenant: null,
        expect: { status: 401, code: 'KG_TOKEN_EXPIRED' },
      },
    ];
    const wrong: string[] = [];
    let checked = 0;
    for (const { method, path } of operations) {
      const route = MATRIX[`${method} ${path}`];
      if (!route) continue; // reported by the test above
      const tenantScoped = path.includes('{tenant}');
      for (const caller of callers) {
        const targets = tenantScoped ? [f.own, f.other] : [f.own];
        for (const target of targets) {
          let expected: { status: number; code?: string };
          if (caller.expect) expected = caller.expect;
          else if (!route.allowed.includes(caller.role!)) expected = { status: 403, code: 'KG_FORBIDDEN' };
          else if (tenantScoped && caller.role !== GA && caller.tenant !== target)
            expected = { status: 403, code: 'KG_FORBIDDEN' };
          else expected = { status: route.success };

          const prepared = (await route.prepare?.(target)) ?? {};
          const params: Record<string, string> = {
            tenant: target.name,
            provider: PROVIDER,
            ...prepared.params,
          };
          const url =
            path.replace(/\{(\w+)\}/g, (_, name: string) =>
              encodeURIComponent(params[name] ?? `missing-${name}`),
            ) + (prepared.query ? `?${prepared.query}` : '');
          const res = await f.api.request(method, url, {
            token: caller.token,
            json: prepared.body ?? (method === 'POST' || method === 'PUT' ? {} : undefined),
          });
          checked++;
          const where = `${method} ${path} as ${caller.label} on ${tenantScoped ? (target === f.own ? 'own' : 'other') : 'gateway'} tenant`;
          if (res.status !== expected.status || (expected.code && res.body?.code !== expected.code)) {
            wrong.push(
              `${where}: expected ${expected.status} ${expected.code ?? ''}, got ${res.status} ${res.body?.code ?? ''} ${res.body?.detail ?? ''}`,
            );
          } else if (res.status >= 400) {
            if (
              res.headers.get('content-type') !== 'application/problem+json' ||
              res.headers.get('keygate-error') !== expected.code
            ) {
              wrong.push(`${where}: ${res.status} without problem+json and Keygate-Error`);
            }
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(operations.length * 6);
  });

  it('left no admin-audit row by a tenant role outside its tenant, and none by a developer for a forbidden action', async () => {
    const rows = await f.gw.services.db
      .selectFrom('admin_audit')
      .select(['tenant_id', 'actor', 'action'])
      .execute();
    const tokens = new Map([
      [f.own.adminTokenId, { tenant: f.own.id, role: TA }],
      [f.own.developerTokenId, { tenant: f.own.id, role: TD }],
    ]);
    let byTenantRoles = 0;
    for (const row of rows) {
      const actor = JSON.parse(row.actor) as { kind: string; tokenId?: string };
      const who = actor.tokenId ? tokens.get(actor.tokenId) : undefined;
      if (!who) continue;
      byTenantRoles++;
      expect(row.tenant_id).toBe(who.tenant);
      if (who.role === TD) expect(row.action).toBe('provider.version.create');
    }
    expect(byTenantRoles).toBeGreaterThan(10);
  });

  it('never returned the canary secret', () => {
    f.assertNoCanaryLeak();
  });
});
