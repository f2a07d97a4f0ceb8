/**
 * Partner keys of the inbound API: a key id, its rate-limit policy, and one or two live HMAC
 * secrets. Secrets must be recoverable to verify signatures, so they are sealed (envelope
 * encryption through the secret store), never hashed; a secret is returned once, when created.
 */
import { createHash } from 'node:crypto';
import { KeygateError } from '../errors.ts';
import { newId, newToken } from '../ids.ts';
import { type RateLimitPolicy, validateRateLimitPolicy } from '../inbound/ratelimit/policy.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import { type Db, type DbDialect, isoTime, toDbTime } from '../storage/db.ts';
import type { OnRedisDown, PartnerKey, RateLimitAlgorithm } from '../storage/schema.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { defineListing, mapPage, type Page, type PageRequest, readPage } from './paging.ts';
import { resolveTenantId } from './tenants.ts';

/** A key holds at most this many live secrets: the current one and, during a rotation, its successor. */
export const MAX_LIVE_SECRETS = 2;

export const DEFAULT_PARTNER_KEY_POLICY: RateLimitPolicy = {
  algorithm: 'token-bucket',
  rate: 10,
  periodSeconds: 1,
  burst: 20,
  onRedisDown: 'local',
};

/** Key ids as `newId('pk')` makes them; anything else is unknown without asking the database. */
export const PARTNER_KEY_ID = /^pk_[0-9a-hjkmnp-tv-z]{26}$/;

/**
 * Change notifications go over the config-change channel every node already listens to. The
 * names cannot collide with provider names (those never contain a colon).
 */
export const partnerKeyChangeTopic = (keyId: string) => `inbound:partner-key:${keyId}`;

/** The AAD a partner secret is sealed under: a sealed secret copied to another key or version fails to open. */
export const partnerSecretAad = (keyId: string, version: number) => `partner-key-secret:${keyId}:${version}`;

export interface PartnerKeyView {
  keyId: string;
  tenantId: string;
  name: string;
  status: 'active' | 'revoked';
  policy: RateLimitPolicy;
  /** Versions of the secrets that verify, oldest first. */
  liveSecretVersions: number[];
  /** What the key may call besides routes that list it by id (sorted; [] = none). */
  scopes: string[];
  createdAt: string;
  revokedAt: string | null;
}

export interface CreatedPartnerKey extends PartnerKeyView {
  /** Shown once; only its sealed form is stored. */
  secret: string;
  secretVersion: number;
}

export interface CreatePartnerKeyInput {
  tenant: string;
  name: string;
  algorithm?: RateLimitAlgorithm;
  rate?: number;
  periodSeconds?: number;
  burst?: number;
  onRedisDown?: OnRedisDown;
  scopes?: readonly string[];
}

/** A scope: `orders:read`, `billing.admin`; letters, digits and `: . _ - /`, 1 to 64 characters. */
export const SCOPE = /^[A-Za-z0-9][A-Za-z0-9:._/-]{0,63}$/;
export const MAX_SCOPES = 32;

/** Checks scopes (of a key or a route) and returns them de-duplicated and sorted. */
export function checkScopes(path: string, scopes: readonly string[]): string[] {
  const unique = [...new Set(scopes)].sort();
  const bad = unique.filter((scope) => typeof scope !== 'string' || !SCOPE.test(scope));
  const message = bad.length
    ? `not valid scopes: ${bad.map((b) => JSON.stringify(b)).join(', ')}; a scope is 1-64 letters, digits and : . _ - / (starting with a letter or digit)`
    : unique.length > MAX_SCOPES
      ? `at most ${MAX_SCOPES} scopes`
      : undefined;
  if (message) throw new KeygateError('KG_VALIDATION_FAILED', message, { errors: [{ path, message }] });
  return unique;
}

/** What a rate looks like: `10/s`, `600/m`, `5/10s`, `1000/h`, `20000/d`. */
export const RATE_FORMAT = /^\s*(\d+)\s*\/\s*(\d*)\s*([smhd])\s*$/;

/** `10/s`, `600/m`, `5/10s`, `1000/h`, `20000/d` -> requests per period. */
export function parseRate(text: string): { rate: number; periodSeconds: number } {
  const m = RATE_FORMAT.exec(text);
  const unit = m ? { s: 1, m: 60, h: 3600, d: 86_400 }[m[3] as 's' | 'm' | 'h' | 'd'] : 0;
  const rate = Number(m?.[1]);
  const periodSeconds = (m?.[2] ? Number(m[2]) : 1) * unit;
  if (
    !m ||
    !Number.isSafeInteger(rate) ||
    rate < 1 ||
    !Number.isSafeInteger(periodSeconds) ||
    periodSeconds < 1
  ) {
    throw new KeygateError(
      'KG_VALIDATION_FAILED',
      `rate ${JSON.stringify(text)} must look like 10/s, 600/m, 5/10s or 1000/h`,
      {
        errors: [{ path: 'rate', message: 'expected <requests>/<period>' }],
      },
    );
  }
  return { rate, periodSeconds };
}

export async function createPartnerKey(
  ctx: ServiceContext,
  actor: Actor,
  input: CreatePartnerKeyInput,
): Promise<CreatedPartnerKey> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  requireKeyName(input.name);
  const policy: RateLimitPolicy = {
    algorithm: input.algorithm ?? DEFAULT_PARTNER_KEY_POLICY.algorithm,
    rate: input.rate ?? DEFAULT_PARTNER_KEY_POLICY.rate,
    periodSeconds: input.periodSeconds ?? DEFAULT_PARTNER_KEY_POLICY.periodSeconds,
    burst: input.burst ?? DEFAULT_PARTNER_KEY_POLICY.burst,
    onRedisDown: input.onRedisDown ?? DEFAULT_PARTNER_KEY_POLICY.onRedisDown,
  };
  checkPolicy(policy);
  const scopes = checkScopes('scopes', input.scopes ?? []);
  const keyId = newId('pk');
  const secret = newPartnerSecret();
  const sealed = await ctx.secrets.seal(partnerSecretAad(keyId, 1), secret);
  const now = toDbTime();
  const row: PartnerKey = {
    id: keyId,
    tenant_id: tenantId,
    name: input.name,
    algorithm: policy.algorithm,
    rate: policy.rate,
    period_seconds: policy.periodSeconds,
    burst: policy.burst,
    on_redis_down: policy.onRedisDown,
    status: 'active',
    created_at: now,
    revoked_at: null,
    scopes: scopes.length ? JSON.stringify(scopes) : null,
  };
  await ctx.db.transaction().execute(async (trx) => {
    await trx.insertInto('partner_keys').values(row).execute();
    await trx
      .insertInto('partner_key_secrets')
      .values({
        id: newId('pks'),
        key_id: keyId,
        version: 1,
        ciphertext: sealed.ciphertext,
        wrapped_key: sealed.wrappedKey,
        kms_key_id: sealed.kmsKeyId,
        created_at: now,
        retired_at: null,
      })
      .execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'partner-key.create',
      targetType: 'partner_key',
      targetId: keyId,
      after: { ...auditView(row, [1]), secret: { version: 1, value: '****' } },
    });
  });
  // A node may have cached "no such key" for this id (a partner trying it early).
  await announceKeyChange(ctx, tenantId, keyId);
  return { ...toView(row, [1]), secret, secretVersion: 1 };
}

/** Adds a second live secret; both verify until one is retired. The new secret is returned once. */
export async function rotatePartnerKey(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; keyId: string },
): Promise<CreatedPartnerKey> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  const secret = newPartnerSecret();
  const view = await ctx.db.transaction().execute(async (trx) => {
    const key = await requireKeyForUpdate(trx, ctx.dialect, tenantId, input.keyId);
    if (key.status === 'revoked') throw new KeygateError('KG_CONFLICT', `partner key ${key.id} is revoked`);
    const versions = await secretVersions(trx, key.id);
    const live = versions.filter((v) => v.live).map((v) => v.version);
    if (live.length >= MAX_LIVE_SECRETS) {
      throw new KeygateError(
        'KG_CONFLICT',
        `partner key ${key.id} already has ${live.length} live secrets (versions ${live.join(', ')}); retire one first`,
      );
    }
    const version = Math.max(0, ...versions.map((v) => v.version)) + 1;
    const sealed = await ctx.secrets.seal(partnerSecretAad(key.id, version), secret);
    await trx
      .insertInto('partner_key_secrets')
      .values({
        id: newId('pks'),
        key_id: key.id,
        version,
        ciphertext: sealed.ciphertext,
        wrapped_key: sealed.wrappedKey,
        kms_key_id: sealed.kmsKeyId,
        created_at: toDbTime(),
        retired_at: null,
      })
      .execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'partner-key.rotate',
      targetType: 'partner_key',
      targetId: key.id,
      before: { liveSecretVersions: live },
      after: { liveSecretVersions: [...live, version], secret: { version, value: '****' } },
    });
    return { ...toView(key, [...live, version]), secret, secretVersion: version };
  });
  await announceKeyChange(ctx, tenantId, input.keyId);
  return view;
}

/**
 * Retires one live secret (by default the older of two); the last live secret cannot be retired
 * (409 KG_CONFLICT), a retired one is not retired again (409 KG_ALREADY_REVOKED).
 */
export async function retirePartnerSecret(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; keyId: string; version?: number },
): Promise<PartnerKeyView & { retiredVersion: number }> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  const view = await ctx.db.transaction().execute(async (trx) => {
    const key = await requireKeyForUpdate(trx, ctx.dialect, tenantId, input.keyId);
    const versions = await secretVersions(trx, key.id);
    const live = versions.filter((v) => v.live).map((v) => v.version);
    const version = input.version ?? live[0];
    if (version !== undefined && versions.some((v) => v.version === version && !v.live)) {
      throw new KeygateError(
        'KG_ALREADY_REVOKED',
        `secret version ${version} of partner key ${key.id} is already retired`,
      );
    }
    if (version === undefined || !live.includes(version)) {
      throw new KeygateError('KG_NOT_FOUND', `partner key ${key.id} has no secret version ${input.version}`);
    }
    if (live.length < 2) {
      throw new KeygateError(
        'KG_CONFLICT',
        `secret version ${version} is the only live secret of partner key ${key.id}; rotate first, or revoke the key`,
      );
    }
    await trx
      .updateTable('partner_key_secrets')
      .set({ retired_at: toDbTime() })
      .where('key_id', '=', key.id)
      .where('version', '=', version)
      .execute();
    const remaining = live.filter((v) => v !== version);
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'partner-key.retire-secret',
      targetType: 'partner_key',
      targetId: key.id,
      before: { liveSecretVersions: live },
      after: { liveSecretVersions: remaining },
    });
    return { ...toView(key, remaining), retiredVersion: version };
  });
  await announceKeyChange(ctx, tenantId, input.keyId);
  return view;
}

/** Revokes a key for good: every request with it then fails with KG_KEY_REVOKED. Twice: 409 KG_ALREADY_REVOKED. */
export async function revokePartnerKey(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; keyId: string },
): Promise<PartnerKeyView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  const view = await ctx.db.transaction().execute(async (trx) => {
    const key = await requireKeyForUpdate(trx, ctx.dialect, tenantId, input.keyId);
    if (key.status === 'revoked')
      throw new KeygateError('KG_ALREADY_REVOKED', `partner key ${key.id} is already revoked`);
    const revokedAt = toDbTime();
    await trx
      .updateTable('partner_keys')
      .set({ status: 'revoked', revoked_at: revokedAt })
      .where('id', '=', key.id)
      .execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'partner-key.revoke',
      targetType: 'partner_key',
      targetId: key.id,
      before: { status: key.status },
      after: { status: 'revoked' },
    });
    const live = (await secretVersions(trx, key.id)).filter((v) => v.live).map((v) => v.version);
    return toView({ ...key, status: 'revoked', revoked_at: revokedAt }, live);
  });
  await announceKeyChange(ctx, tenantId, input.keyId);
  return view;
}

export interface UpdatePartnerKeyPolicyInput {
  tenant: string;
  keyId: string;
  algorithm?: RateLimitAlgorithm;
  rate?: number;
  periodSeconds?: number;
  burst?: number;
  onRedisDown?: OnRedisDown;
}

/**
 * Changes a key's rate-limit policy; fields left out keep their value. The limiter state needs no
 * reset: it is stored per algorithm, a lowered burst caps what a key has saved up, and
 * token-bucket state counted under another period is dropped (see inbound/ratelimit/model.ts).
 */
export async function updatePartnerKeyPolicy(
  ctx: ServiceContext,
  actor: Actor,
  input: UpdatePartnerKeyPolicyInput,
): Promise<PartnerKeyView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  const { algorithm, rate, periodSeconds, burst, onRedisDown } = input;
  if ([algorithm, rate, periodSeconds, burst, onRedisDown].every((v) => v === undefined)) {
    throw new KeygateError(
      'KG_VALIDATION_FAILED',
      'give at least one of algorithm, rate, periodSeconds, burst, onRedisDown',
      { errors: [{ path: 'policy', message: 'nothing to change' }] },
    );
  }
  const view = await ctx.db.transaction().execute(async (trx) => {
    const key = await requireKeyForUpdate(trx, ctx.dialect, tenantId, input.keyId);
    if (key.status === 'revoked') throw new KeygateError('KG_CONFLICT', `partner key ${key.id} is revoked`);
    const before = toView(key, []).policy;
    const policy: RateLimitPolicy = {
      algorithm: algorithm ?? before.algorithm,
      rate: rate ?? before.rate,
      periodSeconds: periodSeconds ?? before.periodSeconds,
      burst: burst ?? before.burst,
      onRedisDown: onRedisDown ?? before.onRedisDown,
    };
    checkPolicy(policy);
    const columns = {
      algorithm: policy.algorithm,
      rate: policy.rate,
      period_seconds: policy.periodSeconds,
      burst: policy.burst,
      on_redis_down: policy.onRedisDown,
    };
    await trx.updateTable('partner_keys').set(columns).where('id', '=', key.id).execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'partner-key.set-policy',
      targetType: 'partner_key',
      targetId: key.id,
      before: { policy: before },
      after: { policy },
    });
    const live = (await secretVersions(trx, key.id)).filter((v) => v.live).map((v) => v.version);
    return toView({ ...key, ...columns }, live);
  });
  // Nodes drop their cached copy of the key, policy included, and load the new one.
  await announceKeyChange(ctx, tenantId, input.keyId);
  return view;
}

/** Replaces the key's scopes (an empty list removes them all); every node applies it at once. */
export async function setPartnerKeyScopes(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; keyId: string; scopes: readonly string[] },
): Promise<PartnerKeyView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  const scopes = checkScopes('scopes', input.scopes);
  const view = await ctx.db.transaction().execute(async (trx) => {
    const key = await requireKeyForUpdate(trx, ctx.dialect, tenantId, input.keyId);
    if (key.status === 'revoked') throw new KeygateError('KG_CONFLICT', `partner key ${key.id} is revoked`);
    const column = scopes.length ? JSON.stringify(scopes) : null;
    await trx.updateTable('partner_keys').set({ scopes: column }).where('id', '=', key.id).execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'partner-key.set-scopes',
      targetType: 'partner_key',
      targetId: key.id,
      before: { scopes: scopesOf(key.scopes) },
      after: { scopes },
    });
    const live = (await secretVersions(trx, key.id)).filter((v) => v.live).map((v) => v.version);
    return toView({ ...key, scopes: column }, live);
  });
  await announceKeyChange(ctx, tenantId, input.keyId);
  return view;
}

const PARTNER_KEYS = defineListing('partner-keys', 1, (k: PartnerKey) => [k.id]);

/** A tenant's partner keys by id (oldest first), a page at a time (all without `page.limit`). */
export async function listPartnerKeys(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  page: PageRequest = {},
): Promise<Page<PartnerKeyView>> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'partner-key.manage', tenantId);
  const query = ctx.db.selectFrom('partner_keys').selectAll().where('tenant_id', '=', tenantId);
  const keys = await readPage(PARTNER_KEYS, query, 'id', page);
  if (keys.items.length === 0) return { items: [], nextCursor: null };
  const secrets = await ctx.db
    .selectFrom('partner_key_secrets')
    .select(['key_id', 'version'])
    .where(
      'key_id',
      'in',
      keys.items.map((k) => k.id),
    )
    .where('retired_at', 'is', null)
    .orderBy('version')
    .execute();
  return mapPage(keys, (k) =>
    toView(
      k,
      secrets.filter((s) => s.key_id === k.id).map((s) => Number(s.version)),
    ),
  );
}

/** Ids of the tenant's keys among `keyIds` (route validation). */
export async function existingPartnerKeyIds(
  db: Db,
  tenantId: string,
  keyIds: readonly string[],
): Promise<Set<string>> {
  if (keyIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('partner_keys')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', [...keyIds])
    .execute();
  return new Set(rows.map((r) => r.id));
}

/** What the inbound gateway needs of a key, with its live secrets opened. */
export interface PartnerKeyForGateway {
  keyId: string;
  tenantId: string;
  status: 'active' | 'revoked';
  policy: RateLimitPolicy;
  scopes: ReadonlySet<string>;
  /** Live secrets that decrypted, oldest first; values stay in memory only. */
  secrets: Array<{ version: number; secret: string }>;
  /**
   * Live secrets that will never decrypt as stored (their wrapped data key refused, or their
   * ciphertext altered): left out of `secrets`, so a request signed with one fails as any wrong
   * signature does. Absent when every live secret decrypted.
   */
  unreadableSecrets?: UnreadablePartnerSecret[];
}

/** A live partner-key secret left out of a load, as the gateway's log reports it. */
export interface UnreadablePartnerSecret {
  version: number;
  /** A digest of the row's sealed columns, never logged: a row altered anew is reported anew. */
  fingerprint: string;
  /** Which part failed and what the key provider said; no bytes of either. */
  cause: string;
}

/**
 * Inbound hot path (behind the gateway's cache): one key with its live secrets decrypted, or
 * undefined when no such key exists. Revoked keys are returned without secrets, so the gateway can
 * say "revoked" rather than "unknown". A secret that will never decrypt as stored is a fault of
 * that one row: it is left out (listed in `unreadableSecrets`) and the others verify. A key
 * provider or database that could not answer fails the whole load, so the gateway's cache keeps
 * its last-known-good copy.
 */
export async function loadPartnerKeyForGateway(
  deps: { db: Db; secrets: SecretStore },
  keyId: string,
): Promise<PartnerKeyForGateway | undefined> {
  if (!PARTNER_KEY_ID.test(keyId)) return undefined;
  const key = await deps.db.selectFrom('partner_keys').selectAll().where('id', '=', keyId).executeTakeFirst();
  if (!key) return undefined;
  const view = toView(key, []);
  if (key.status === 'revoked')
    return {
      keyId,
      tenantId: key.tenant_id,
      status: 'revoked',
      policy: view.policy,
      scopes: new Set(view.scopes),
      secrets: [],
    };
  const rows = await deps.db
    .selectFrom('partner_key_secrets')
    .select(['version', 'ciphertext', 'wrapped_key', 'kms_key_id'])
    .where('key_id', '=', keyId)
    .where('retired_at', 'is', null)
    .orderBy('version')
    .execute();
  const opened = await Promise.all(
    rows.map(async (r): Promise<{ version: number; secret: string } | UnreadablePartnerSecret> => {
      const version = Number(r.version);
      try {
        const secret = await deps.secrets.open(partnerSecretAad(keyId, version), {
          ciphertext: r.ciphertext,
          wrappedKey: r.wrapped_key,
          kmsKeyId: r.kms_key_id,
        });
        return { version, secret };
      } catch (err) {
        if (!(err instanceof KeygateError && err.code === 'KG_SECRET_UNREADABLE')) throw err;
        const fingerprint = createHash('sha256')
          .update(`${r.kms_key_id}\0${r.wrapped_key}\0${r.ciphertext}`)
          .digest('base64');
        return { version, fingerprint, cause: err.message };
      }
    }),
  );
  const secrets = opened.filter((o) => 'secret' in o);
  const unreadable = opened.filter((o): o is UnreadablePartnerSecret => !('secret' in o));
  return {
    keyId,
    tenantId: key.tenant_id,
    status: 'active',
    policy: view.policy,
    scopes: new Set(view.scopes),
    secrets,
    ...(unreadable.length > 0 ? { unreadableSecrets: unreadable } : {}),
  };
}

function newPartnerSecret(): string {
  return newToken('kgp');
}

async function announceKeyChange(ctx: ServiceContext, tenantId: string, keyId: string): Promise<void> {
  await ctx.configEvents.publish(tenantId, partnerKeyChangeTopic(keyId));
}

/** Reads the key inside the transaction; on MySQL the row lock serialises concurrent rotations of one key. */
async function requireKeyForUpdate(
  trx: Db,
  dialect: DbDialect,
  tenantId: string,
  keyId: string,
): Promise<PartnerKey> {
  let query = trx
    .selectFrom('partner_keys')
    .selectAll()
    .where('id', '=', keyId)
    .where('tenant_id', '=', tenantId);
  // SQLite has no FOR UPDATE; its transactions are serialised anyway.
  if (dialect === 'mysql') query = query.forUpdate();
  const key = await query.executeTakeFirst();
  if (!key) throw new KeygateError('KG_NOT_FOUND', `partner key ${keyId} not found`);
  return key;
}

async function secretVersions(trx: Db, keyId: string): Promise<Array<{ version: number; live: boolean }>> {
  const rows = await trx
    .selectFrom('partner_key_secrets')
    .select(['version', 'retired_at'])
    .where('key_id', '=', keyId)
    .orderBy('version')
    .execute();
  return rows.map((r) => ({ version: Number(r.version), live: r.retired_at === null }));
}

/** The limiters' own validation, with its findings as `{path, message}` like every other validation error. */
function checkPolicy(policy: RateLimitPolicy): void {
  try {
    validateRateLimitPolicy(policy);
  } catch (err) {
    const found = err instanceof KeygateError ? (err.extra.errors as string[] | undefined) : undefined;
    if (!found) throw err;
    const errors = found.map((message) => ({ path: message.split(' ')[0] ?? 'policy', message }));
    throw new KeygateError('KG_VALIDATION_FAILED', err instanceof Error ? err.message : 'invalid policy', {
      errors,
    });
  }
}

function requireKeyName(name: string): void {
  if (!/^[\w .@-]{1,100}$/.test(name)) {
    throw new KeygateError('KG_VALIDATION_FAILED', 'name must be 1-100 of letters, digits, space, _ . @ -', {
      errors: [{ path: 'name', message: 'invalid name' }],
    });
  }
}

function toView(key: PartnerKey, liveSecretVersions: number[]): PartnerKeyView {
  return {
    keyId: key.id,
    tenantId: key.tenant_id,
    name: key.name,
    status: key.status,
    policy: {
      algorithm: key.algorithm,
      rate: Number(key.rate),
      periodSeconds: Number(key.period_seconds),
      burst: Number(key.burst),
      onRedisDown: key.on_redis_down,
    },
    liveSecretVersions,
    scopes: scopesOf(key.scopes),
    createdAt: isoTime(key.created_at),
    revokedAt: isoTime(key.revoked_at),
  };
}

function scopesOf(column: string | null | undefined): string[] {
  // undefined: a row read before the scopes migration ran.
  return column == null ? [] : (JSON.parse(column) as string[]);
}

function auditView(key: PartnerKey, liveSecretVersions: number[]) {
  const { keyId, name, status, policy, scopes } = toView(key, liveSecretVersions);
  return { keyId, name, status, policy, scopes, liveSecretVersions };
}
