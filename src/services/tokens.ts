/**
 * Admin tokens (admin API) and service tokens (outbound proxy). Only SHA-256 hashes are stored;
 * the token itself is returned once, at creation.
 */
import { KeygateError } from '../errors.ts';
import { hashToken, newId, newToken } from '../ids.ts';
import { type Db, fromDbTime, isoTime, toDbTime } from '../storage/db.ts';
import type { AdminRole, ServiceToken } from '../storage/schema.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { defineListing, mapPage, type Page, type PageRequest, readPage } from './paging.ts';
import { resolveTenantId } from './tenants.ts';

/** Config-event topic announcing that a tenant's service tokens changed (a revocation). */
export const SERVICE_TOKENS_TOPIC = 'outbound:service-tokens';

export const ADMIN_ROLES: readonly AdminRole[] = ['gateway_admin', 'tenant_admin', 'tenant_developer'];

export interface CreatedCredential {
  id: string;
  name: string;
  tenantId: string | null;
  token: string;
}

export async function createServiceToken(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; name: string },
): Promise<CreatedCredential> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'service-token.manage', tenantId);
  requireName(input.name);
  const token = newToken('kgs');
  const id = newId('stk');
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('service_tokens')
      .values({
        id,
        tenant_id: tenantId,
        name: input.name,
        token_hash: hashToken(token),
        created_at: toDbTime(),
        revoked_at: null,
      })
      .execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'service-token.create',
      targetType: 'service_token',
      targetId: id,
      after: { id, name: input.name },
    });
  });
  return { id, name: input.name, tenantId, token };
}

/** A service token as listed (admin API and CLI alike): everything but the hash, times in ISO 8601. */
export interface ServiceTokenView {
  id: string;
  name: string;
  tenantId: string;
  createdAt: string;
  revokedAt: string | null;
  status: 'active' | 'revoked';
}

export function toServiceTokenView(
  t: Pick<ServiceToken, 'id' | 'name' | 'tenant_id' | 'created_at' | 'revoked_at'>,
): ServiceTokenView {
  return {
    id: t.id,
    name: t.name,
    tenantId: t.tenant_id,
    createdAt: isoTime(t.created_at),
    revokedAt: isoTime(t.revoked_at),
    status: t.revoked_at ? 'revoked' : 'active',
  };
}

const SERVICE_TOKENS = defineListing('service-tokens', 1, (t: { id: string }) => [t.id]);

/** A tenant's service tokens by id (oldest first), a page at a time (all without `page.limit`). */
export async function listServiceTokens(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  page: PageRequest = {},
): Promise<Page<ServiceTokenView>> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'service-token.manage', tenantId);
  const query = ctx.db
    .selectFrom('service_tokens')
    .select(['id', 'name', 'tenant_id', 'created_at', 'revoked_at'])
    .where('tenant_id', '=', tenantId);
  return mapPage(await readPage(SERVICE_TOKENS, query, 'id', page), toServiceTokenView);
}

/**
 * Revokes a service token: 404 when the tenant has no such token, 409 KG_ALREADY_REVOKED when it
 * was revoked before.
 */
export async function revokeServiceToken(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  id: string,
): Promise<void> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'service-token.manage', tenantId);
  await ctx.db.transaction().execute(async (trx) => {
    const now = Date.now();
    const res = await trx
      .updateTable('service_tokens')
      .set({ revoked_at: toDbTime(now) })
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      const existing = await trx
        .selectFrom('service_tokens')
        .select('id')
        .where('id', '=', id)
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst();
      throw existing
        ? new KeygateError('KG_ALREADY_REVOKED', `service token ${id} is already revoked`)
        : new KeygateError('KG_NOT_FOUND', `service token ${id} not found`);
    }
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'service-token.revoke',
      targetType: 'service_token',
      targetId: id,
      before: { revokedAt: null },
      after: { revokedAt: new Date(now).toISOString() },
    });
  });
  await ctx.configEvents.publish(tenantId, SERVICE_TOKENS_TOPIC);
}

/** Outbound hot path: token -> tenant. Returns undefined for unknown or revoked tokens. */
export async function findServiceToken(
  db: Db,
  token: string,
): Promise<{ id: string; tenantId: string } | undefined> {
  const row = await db
    .selectFrom('service_tokens')
    .select(['id', 'tenant_id'])
    .where('token_hash', '=', hashToken(token))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? { id: row.id, tenantId: row.tenant_id } : undefined;
}

/** Bounds of an admin token's lifetime, in seconds (unset = no expiry). */
export const MIN_TOKEN_LIFETIME_S = 60;
export const MAX_TOKEN_LIFETIME_S = 10 * 365 * 86_400;

export async function createAdminToken(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant?: string | null; role: AdminRole; name: string; expiresInSeconds?: number | null },
): Promise<CreatedCredential & { role: AdminRole; expiresAt: string | null }> {
  if (!ADMIN_ROLES.includes(input.role)) {
    throw new KeygateError('KG_VALIDATION_FAILED', `role must be one of ${ADMIN_ROLES.join(', ')}`, {
      errors: [{ path: 'role', message: 'unknown role' }],
    });
  }
  requireName(input.name);
  let tenantId: string | null = null;
  if (input.role === 'gateway_admin') {
    if (input.tenant)
      throw new KeygateError('KG_VALIDATION_FAILED', 'a gateway_admin token belongs to no tenant');
    authorize(actor, 'tenant.create', null); // only gateway admins mint gateway admins
  } else {
    if (!input.tenant) throw new KeygateError('KG_VALIDATION_FAILED', `a ${input.role} token needs a tenant`);
    tenantId = await resolveTenantId(ctx.db, input.tenant);
    authorize(actor, 'member.manage', tenantId);
  }
  const lifetime = input.expiresInSeconds;
  // The admin API's schema holds the same bounds; the CLI reaches here with whatever was typed.
  if (
    lifetime !== undefined &&
    lifetime !== null &&
    !(Number.isSafeInteger(lifetime) && lifetime >= MIN_TOKEN_LIFETIME_S && lifetime <= MAX_TOKEN_LIFETIME_S)
  ) {
    throw new KeygateError(
      'KG_VALIDATION_FAILED',
      `a token's lifetime must be 60 s to 10 years (leave it out for no expiry), got ${lifetime} s`,
    );
  }
  const token = newToken('kga');
  const id = newId('atk');
  const expiresAtMs = lifetime ? Date.now() + lifetime * 1000 : null;
  const expiresAt = expiresAtMs === null ? null : new Date(expiresAtMs).toISOString();
  await ctx.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('admin_tokens')
      .values({
        id,
        tenant_id: tenantId,
        role: input.role,
        name: input.name,
        token_hash: hashToken(token),
        created_by: actor.kind === 'admin' ? actor.tokenId : null,
        expires_at: expiresAtMs === null ? null : toDbTime(expiresAtMs),
        revoked_at: null,
        created_at: toDbTime(),
      })
      .execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'admin-token.create',
      targetType: 'admin_token',
      targetId: id,
      after: { id, name: input.name, role: input.role, expiresAt },
    });
  });
  return { id, name: input.name, tenantId, token, role: input.role, expiresAt };
}

/** Admin API authentication: the bearer token -> the acting identity, or a 401. */
export async function authenticateAdminToken(
  db: Db,
  token: string,
  now = Date.now(),
): Promise<Actor & { kind: 'admin' }> {
  const row = await db
    .selectFrom('admin_tokens')
    .select(['id', 'tenant_id', 'role', 'expires_at', 'revoked_at'])
    .where('token_hash', '=', hashToken(token))
    .executeTakeFirst();
  if (!row) throw new KeygateError('KG_UNAUTHENTICATED', 'unknown admin token');
  if (row.revoked_at || (row.expires_at && fromDbTime(row.expires_at) <= now)) {
    throw new KeygateError('KG_TOKEN_EXPIRED', 'admin token expired or revoked');
  }
  return { kind: 'admin', tokenId: row.id, role: row.role, tenantId: row.tenant_id };
}

function requireName(name: string): void {
  if (!/^[\w .@-]{1,100}$/.test(name)) {
    throw new KeygateError('KG_VALIDATION_FAILED', 'name must be 1-100 of letters, digits, space, _ . @ -', {
      errors: [{ path: 'name', message: 'invalid name' }],
    });
  }
}

export type CredentialStatus = 'active' | 'expired' | 'revoked';

/** An admin token as listed: everything but the hash, times in ISO 8601. */
export interface AdminTokenView {
  id: string;
  name: string;
  role: AdminRole;
  tenantId: string | null;
  createdBy: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  createdAt: string;
  status: CredentialStatus;
}

const ADMIN_TOKENS = defineListing('admin-tokens', 1, (t: { id: string }) => [t.id]);

/**
 * Lists admin tokens by id (oldest first): a tenant's members, or with `tenant: null` the
 * gateway-wide (gateway_admin) tokens; a page at a time, or all without `limit`.
 */
export async function listAdminTokens(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string | null } & PageRequest,
): Promise<Page<AdminTokenView>> {
  const tenantId = await authorizeAdminTokenScope(ctx, actor, input.tenant);
  let query = ctx.db
    .selectFrom('admin_tokens')
    .select(['id', 'name', 'role', 'tenant_id', 'created_by', 'expires_at', 'revoked_at', 'created_at']);
  query = tenantId === null ? query.where('tenant_id', 'is', null) : query.where('tenant_id', '=', tenantId);
  const now = Date.now();
  return mapPage(await readPage(ADMIN_TOKENS, query, 'id', input), (r) => ({
    id: r.id,
    name: r.name,
    role: r.role,
    tenantId: r.tenant_id,
    createdBy: r.created_by,
    expiresAt: isoTime(r.expires_at),
    revokedAt: isoTime(r.revoked_at),
    createdAt: isoTime(r.created_at),
    status: r.revoked_at ? 'revoked' : r.expires_at && fromDbTime(r.expires_at) <= now ? 'expired' : 'active',
  }));
}

/**
 * Revokes an admin token of a tenant (or with `tenant: null` a gateway-wide one): 404 when the
 * scope has no such token, 409 KG_ALREADY_REVOKED when it was revoked before.
 */
export async function revokeAdminToken(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string | null; id: string },
): Promise<void> {
  const tenantId = await authorizeAdminTokenScope(ctx, actor, input.tenant);
  await ctx.db.transaction().execute(async (trx) => {
    const now = Date.now();
    let update = trx
      .updateTable('admin_tokens')
      .set({ revoked_at: toDbTime(now) })
      .where('id', '=', input.id)
      .where('revoked_at', 'is', null);
    update =
      tenantId === null ? update.where('tenant_id', 'is', null) : update.where('tenant_id', '=', tenantId);
    const res = await update.executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      let existing = trx.selectFrom('admin_tokens').select('id').where('id', '=', input.id);
      existing =
        tenantId === null
          ? existing.where('tenant_id', 'is', null)
          : existing.where('tenant_id', '=', tenantId);
      throw (await existing.executeTakeFirst())
        ? new KeygateError('KG_ALREADY_REVOKED', `admin token ${input.id} is already revoked`)
        : new KeygateError('KG_NOT_FOUND', `admin token ${input.id} not found`);
    }
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'admin-token.revoke',
      targetType: 'admin_token',
      targetId: input.id,
      before: { revokedAt: null },
      after: { revokedAt: new Date(now).toISOString() },
    });
  });
}

async function authorizeAdminTokenScope(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string | null,
): Promise<string | null> {
  if (tenant === null) {
    authorize(actor, 'gateway-token.manage', null);
    return null;
  }
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'member.manage', tenantId);
  return tenantId;
}
