/** Provider secrets, write-only: values go in, only names and timestamps come out. */
import { KeygateError } from '../errors.ts';
import type { SecretInfo } from '../secrets/secret-store.ts';
import { writeTransaction } from '../storage/write-conflicts.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { defineListing, type Page, type PageRequest, pageOf, rowsToFetch, startAfter } from './paging.ts';
import { PROVIDER_NAME } from './provider-config.ts';
import { resolveTenantId } from './tenants.ts';

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,99}$/;
/** The store seals into a TEXT column (64 KiB on MySQL): 32 KiB of value plus IV, tag and base64 fit. */
const MAX_SECRET_BYTES = 32 * 1024;

export async function setSecret(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider: string; name: string; value: string; sensitive?: boolean },
): Promise<{ provider: string; name: string; version: number; created: boolean; updatedAt: string }> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'secret.manage', tenantId);
  checkSecretAddress(input.provider, input.name);
  if (input.value.length === 0)
    throw new KeygateError('KG_VALIDATION_FAILED', `secret ${input.name} is empty`);
  if (Buffer.byteLength(input.value) > MAX_SECRET_BYTES) {
    throw new KeygateError(
      'KG_VALIDATION_FAILED',
      `secret ${input.name} is larger than ${MAX_SECRET_BYTES} bytes`,
    );
  }
  const result = await writeTransaction(ctx.db, async (trx) => {
    const r = await ctx.secrets.set(
      tenantId,
      input.provider,
      input.name,
      input.value,
      { sensitive: input.sensitive },
      trx,
    );
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: r.created ? 'secret.set' : 'secret.rotate',
      targetType: 'secret',
      targetId: `${input.provider}/${input.name}`,
      before: r.created ? undefined : { version: r.version - 1, value: '****' },
      // Whether it is masked in proxied answers changes what callers may see: recorded when set.
      after: {
        version: r.version,
        value: '****',
        ...(input.sensitive === undefined ? {} : { sensitive: input.sensitive }),
      },
    });
    return r;
  });
  ctx.secrets.invalidate(tenantId, input.provider);
  await ctx.configEvents.publish(tenantId, input.provider);
  return { provider: input.provider, name: input.name, ...result };
}

export async function deleteSecret(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider: string; name: string },
): Promise<void> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'secret.manage', tenantId);
  checkSecretAddress(input.provider, input.name);
  await ctx.db.transaction().execute(async (trx) => {
    const deleted = await ctx.secrets.delete(tenantId, input.provider, input.name, trx);
    if (!deleted) throw new KeygateError('KG_NOT_FOUND', `secret ${input.provider}/${input.name} not found`);
    await recordAdminAudit(trx, actor, {
      tenantId,
      action: 'secret.delete',
      targetType: 'secret',
      targetId: `${input.provider}/${input.name}`,
      before: { value: '****' },
    });
  });
  ctx.secrets.invalidate(tenantId, input.provider);
  await ctx.configEvents.publish(tenantId, input.provider);
}

const SECRETS = defineListing('secrets', 2, (s: SecretInfo) => [s.provider, s.name]);

/** Secret names by provider, then name, a page at a time (all without `limit`). */
export async function listSecrets(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; provider?: string } & PageRequest,
): Promise<Page<SecretInfo>> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'secret.manage', tenantId);
  const rows = await ctx.secrets.list(tenantId, input.provider, {
    after: startAfter(SECRETS, input),
    limit: rowsToFetch(input),
  });
  return pageOf(SECRETS, rows, input);
}

function checkSecretAddress(provider: string, name: string): void {
  const errors: Array<{ path: string; message: string }> = [];
  if (!PROVIDER_NAME.test(provider)) errors.push({ path: 'provider', message: 'invalid provider name' });
  if (!SECRET_NAME.test(name))
    errors.push({ path: 'name', message: 'secret names are 1-100 of A-Z a-z 0-9 _ . -' });
  if (errors.length)
    throw new KeygateError('KG_VALIDATION_FAILED', errors.map((e) => e.message).join('; '), { errors });
}
