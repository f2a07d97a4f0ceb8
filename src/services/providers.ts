/**
 * Versioned provider configs: every change is a new immutable version; one version is active.
 * Activation is optimistic: it names the revision it saw, and a concurrent activation gets 409.
 */
import type { z } from 'zod';
import { KeygateError } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Db, type DbDialect, isoTime, toDbTime } from '../storage/db.ts';
import type { Provider, ProviderVersion } from '../storage/schema.ts';
import { writeTransaction } from '../storage/write-conflicts.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { type DiffLine, diffLines, unifiedDiff } from './line-diff.ts';
import {
  defineListing,
  invalidCursor,
  mapPage,
  type Page,
  type PageRequest,
  pageOf,
  readPage,
  rowsToFetch,
  startAfter,
} from './paging.ts';
import { type ProviderConfig, providerConfigSchema } from './provider-config.ts';
import { resolveTenantId } from './tenants.ts';

export interface ProviderView {
  id: string;
  tenantId: string;
  name: string;
  activeVersion: number | null;
  revision: number;
  updatedAt: string;
}

export interface VersionView {
  provider: string;
  version: number;
  active: boolean;
  config: ProviderConfig;
  createdBy: string | null;
  createdAt: string;
}

/** Parses and validates a provider config, including compiling its scripts in the sandbox. */
export async function validateProviderConfig(ctx: ServiceContext, input: unknown): Promise<ProviderConfig> {
  const parsed = providerConfigSchema.safeParse(input);
  if (!parsed.success) throw validationError(parsed.error);
  const cfg = parsed.data;
  if (cfg.request) await ctx.sandbox.validate('request', cfg.request);
  if (cfg.response) await ctx.sandbox.validate('response', cfg.response);
  return cfg;
}

export function validationError(error: z.ZodError): KeygateError {
  const errors = error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  return new KeygateError(
    'KG_VALIDATION_FAILED',
    errors.map((e) => `${e.path || '(root)'}: ${e.message}`).join('; '),
    { errors },
  );
}

/**
 * Creates a new version from a config document and activates it unless `draft`.
 * `provider apply` and the admin API's "create version" both land here.
 */
export async function applyProviderVersion(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; config: unknown; draft?: boolean },
): Promise<VersionView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, input.draft ? 'provider.draft' : 'provider.activate', tenantId);
  const config = await validateProviderConfig(ctx, input.config);
  const view = await writeTransaction(ctx.db, async (trx) => {
    const provider = await ensureProvider(trx, ctx.dialect, tenantId, config.name);
    const last = await trx
      .selectFrom('provider_versions')
      .select((eb) => eb.fn.max('version').as('max'))
      .where('provider_id', '=', provider.id)
      .executeTakeFirst();
    const version = Number(last?.max ?? 0) + 1;
    const createdAt = toDbTime();
    const createdBy = actor.kind === 'admin' ? actor.tokenId : null;
    await trx
      .insertInto('provider_versions')
      .values({
        id: newId('pvr'),
        provider_id: provider.id,
        tenant_id: tenantId,
        version,
        config: JSON.stringify(config),
        created_by: createdBy,
        created_at: createdAt,
      })
      .execute();
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'provider.version.create',
      targetType: 'provider',
      targetId: `${config.name}@${version}`,
      after: config,
    });
    if (!input.draft) await setActiveVersion(trx, actor, provider, version, provider.revision);
    return {
      provider: config.name,
      version,
      active: !input.draft,
      config,
      createdBy,
      createdAt: isoTime(createdAt),
    };
  });
  if (!input.draft) await ctx.configEvents.publish(tenantId, config.name);
  return view;
}

/**
 * Makes `version` the active one. `expectedRevision` is the provider revision the caller saw;
 * when omitted, the revision read inside this transaction is used.
 */
export async function activateProviderVersion(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider: string; version: number; expectedRevision?: number },
): Promise<ProviderView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'provider.activate', tenantId);
  const view = await ctx.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, tenantId, input.provider);
    await requireVersion(trx, provider, input.version);
    return setActiveVersion(trx, actor, provider, input.version, input.expectedRevision ?? provider.revision);
  });
  await ctx.configEvents.publish(tenantId, input.provider);
  return view;
}

/** Re-activates an earlier version: `to`, or the newest version older than the active one. */
export async function rollbackProvider(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider: string; to?: number; expectedRevision?: number },
): Promise<ProviderView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'provider.activate', tenantId);
  const view = await ctx.db.transaction().execute(async (trx) => {
    const provider = await requireProvider(trx, tenantId, input.provider);
    let target = input.to;
    if (target === undefined) {
      const previous = await trx
        .selectFrom('provider_versions')
        .select('version')
        .where('provider_id', '=', provider.id)
        .where('version', '<', provider.active_version ?? Number.MAX_SAFE_INTEGER)
        .orderBy('version', 'desc')
        .executeTakeFirst();
      if (!previous)
        throw new KeygateError('KG_CONFLICT', `provider ${input.provider} has no earlier version`);
      target = previous.version;
    }
    await requireVersion(trx, provider, target);
    return setActiveVersion(
      trx,
      actor,
      provider,
      target,
      input.expectedRevision ?? provider.revision,
      'rollback',
    );
  });
  await ctx.configEvents.publish(tenantId, input.provider);
  return view;
}

const PROVIDERS = defineListing('providers', 1, (p: Provider) => [p.name]);
const PROVIDER_VERSIONS = defineListing('provider-versions', 1, (v: ProviderVersion) => [String(v.version)]);

/** A tenant's providers by name, a page at a time (all without `page.limit`). */
export async function listProviders(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  page: PageRequest = {},
): Promise<Page<ProviderView>> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'provider.read', tenantId);
  const query = ctx.db.selectFrom('providers').selectAll().where('tenant_id', '=', tenantId);
  return mapPage(await readPage(PROVIDERS, query, 'name', page), toProviderView);
}

export async function getProvider(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  name: string,
): Promise<ProviderView> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'provider.read', tenantId);
  return toProviderView(await requireProvider(ctx.db, tenantId, name));
}

/** A provider's versions, newest (highest number) first, a page at a time (all without `page.limit`). */
export async function listProviderVersions(
  ctx: ServiceContext,
  actor: Actor,
  tenant: string,
  name: string,
  page: PageRequest = {},
): Promise<Page<VersionView>> {
  const tenantId = await resolveTenantId(ctx.db, tenant);
  authorize(actor, 'provider.read', tenantId);
  const provider = await requireProvider(ctx.db, tenantId, name);
  const after = startAfter(PROVIDER_VERSIONS, page);
  const before = after === undefined ? undefined : versionNumberOf(after[0]);
  const rows = await ctx.db
    .selectFrom('provider_versions')
    .selectAll()
    .where('provider_id', '=', provider.id)
    .$if(before !== undefined, (q) => q.where('version', '<', before!))
    .orderBy('version', 'desc')
    .$if(page.limit !== undefined, (q) => q.limit(rowsToFetch(page)!))
    .execute();
  return mapPage(pageOf(PROVIDER_VERSIONS, rows, page), (r) => toVersionView(provider, r));
}

function versionNumberOf(cursorKey: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(cursorKey)) throw invalidCursor();
  return Number(cursorKey);
}

export async function getProviderVersion(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider: string; version?: number | 'active' },
): Promise<VersionView> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'provider.read', tenantId);
  const provider = await requireProvider(ctx.db, tenantId, input.provider);
  const wanted =
    input.version === undefined || input.version === 'active' ? provider.active_version : input.version;
  if (wanted === null)
    throw new KeygateError('KG_NOT_FOUND', `provider ${input.provider} has no active version`);
  return toVersionView(provider, await requireVersion(ctx.db, provider, wanted));
}

export interface VersionDiff {
  provider: string;
  from: number;
  to: number;
  identical: boolean;
  /** `diff -u` text of the two configs rendered by `renderConfigForDiff`. */
  unified: string;
  lines: DiffLine[];
}

/** Line diff of two versions: pretty JSON with sorted keys, each script appended line by line. */
export async function diffProviderVersions(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider: string; from: number | 'active'; to: number | 'active' },
): Promise<VersionDiff> {
  const from = await getProviderVersion(ctx, actor, {
    tenant: input.tenant,
    provider: input.provider,
    version: input.from,
  });
  const to = await getProviderVersion(ctx, actor, {
    tenant: input.tenant,
    provider: input.provider,
    version: input.to,
  });
  const lines = diffLines(renderConfigForDiff(from.config), renderConfigForDiff(to.config));
  const unified = unifiedDiff(lines, {
    from: `${from.provider}@${from.version}`,
    to: `${to.provider}@${to.version}`,
  });
  return {
    provider: from.provider,
    from: from.version,
    to: to.version,
    identical: unified === '',
    unified,
    lines,
  };
}

/** Scripts are shown as source lines, not as one escaped JSON string, so a diff points at the changed line. */
export function renderConfigForDiff(config: ProviderConfig): string[] {
  const { request, response, ...rest } = config;
  const lines = JSON.stringify(sortKeys(rest), null, 2).split('\n');
  for (const [kind, source] of [
    ['request', request],
    ['response', response],
  ] as const) {
    if (source !== undefined) lines.push('', `// ${kind} script`, ...source.split(/\r?\n/));
  }
  return lines;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Outbound hot path support: the active version of a tenant's provider, without authorization. */
export async function loadActiveProviderConfig(
  db: Db,
  tenantId: string,
  name: string,
): Promise<{ version: number; revision: number; config: ProviderConfig } | undefined> {
  const row = await db
    .selectFrom('providers as p')
    .innerJoin('provider_versions as v', (join) =>
      join.onRef('v.provider_id', '=', 'p.id').onRef('v.version', '=', 'p.active_version'),
    )
    .select(['v.version', 'p.revision', 'v.config'])
    .where('p.tenant_id', '=', tenantId)
    .where('p.name', '=', name)
    .executeTakeFirst();
  if (!row) return undefined;
  return { version: row.version, revision: row.revision, config: JSON.parse(row.config) as ProviderConfig };
}

async function setActiveVersion(
  trx: Db,
  actor: Actor,
  provider: Provider,
  version: number,
  expectedRevision: number,
  action: 'activate' | 'rollback' = 'activate',
): Promise<ProviderView> {
  const updatedAt = toDbTime();
  const res = await trx
    .updateTable('providers')
    .set((eb) => ({ active_version: version, revision: eb('revision', '+', 1), updated_at: updatedAt }))
    .where('id', '=', provider.id)
    .where('revision', '=', expectedRevision)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) {
    throw new KeygateError(
      'KG_VERSION_CONFLICT',
      `provider ${provider.name} changed concurrently (expected revision ${expectedRevision}); reload and retry`,
    );
  }
  await recordAdminAudit(trx, actor, {
    tenantId: provider.tenant_id,
    action: `provider.${action}`,
    targetType: 'provider',
    targetId: provider.name,
    before: { activeVersion: provider.active_version, revision: provider.revision },
    after: { activeVersion: version, revision: expectedRevision + 1 },
  });
  return {
    ...toProviderView(provider),
    activeVersion: version,
    revision: expectedRevision + 1,
    updatedAt: isoTime(updatedAt),
  };
}

/**
 * The provider row, created on first use. On MySQL it is locked for the transaction, so concurrent
 * versions of one provider take their numbers one after the other; two first uses racing end in a
 * duplicate key, which writeTransaction retries.
 */
async function ensureProvider(
  trx: Db,
  dialect: DbDialect,
  tenantId: string,
  name: string,
): Promise<Provider> {
  let query = trx
    .selectFrom('providers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name);
  if (dialect === 'mysql') query = query.forUpdate();
  const existing = await query.executeTakeFirst();
  if (existing) return existing;
  const now = toDbTime();
  const row = {
    id: newId('prv'),
    tenant_id: tenantId,
    name,
    active_version: null,
    revision: 0,
    created_at: now,
    updated_at: now,
  };
  await trx.insertInto('providers').values(row).execute();
  return row;
}

async function requireProvider(db: Db, tenantId: string, name: string): Promise<Provider> {
  const row = await db
    .selectFrom('providers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  if (!row) throw new KeygateError('KG_PROVIDER_NOT_FOUND', `provider ${name} not found`);
  return row;
}

async function requireVersion(db: Db, provider: Provider, version: number): Promise<ProviderVersion> {
  const row = await db
    .selectFrom('provider_versions')
    .selectAll()
    .where('provider_id', '=', provider.id)
    .where('version', '=', version)
    .executeTakeFirst();
  if (!row) throw new KeygateError('KG_NOT_FOUND', `provider ${provider.name} has no version ${version}`);
  return row;
}

function toProviderView(p: Provider): ProviderView {
  return {
    id: p.id,
    tenantId: p.tenant_id,
    name: p.name,
    activeVersion: p.active_version,
    revision: p.revision,
    updatedAt: isoTime(p.updated_at),
  };
}

function toVersionView(p: Provider, v: ProviderVersion): VersionView {
  return {
    provider: p.name,
    version: v.version,
    active: p.active_version === v.version,
    config: JSON.parse(v.config) as ProviderConfig,
    createdBy: v.created_by,
    createdAt: isoTime(v.created_at),
  };
}
