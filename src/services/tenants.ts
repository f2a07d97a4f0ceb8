import { KeygateError } from '../errors.ts';
import { newId } from '../ids.ts';
import { type Db, isoTime, toDbTime } from '../storage/db.ts';
import type { Tenant } from '../storage/schema.ts';
import { writeTransaction } from '../storage/write-conflicts.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';
import { defineListing, type Page, type PageRequest, readPage } from './paging.ts';

const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A tenant as the admin API and the CLI show it. */
export interface TenantView {
  id: string;
  name: string;
  createdAt: string;
}

export function toTenantView(t: Tenant): TenantView {
  return { id: t.id, name: t.name, createdAt: isoTime(t.created_at) };
}

export async function createTenant(
  ctx: ServiceContext,
  actor: Actor,
  input: { name: string },
): Promise<Tenant> {
  authorize(actor, 'tenant.create', null);
  if (!TENANT_NAME.test(input.name)) {
    throw new KeygateError(
      'KG_VALIDATION_FAILED',
      'tenant name must be 1-63 of a-z 0-9 _ - and start alphanumeric',
      {
        errors: [{ path: 'name', message: 'invalid tenant name' }],
      },
    );
  }
  return writeTransaction(ctx.db, async (trx) => {
    const existing = await trx
      .selectFrom('tenants')
      .select('id')
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (existing) throw new KeygateError('KG_CONFLICT', `tenant ${input.name} already exists`);
    const tenant: Tenant = { id: newId('ten'), name: input.name, created_at: toDbTime() };
    await trx.insertInto('tenants').values(tenant).execute();
    await recordAdminAudit(trx, actor, {
      tenantId: tenant.id,
      action: 'tenant.create',
      targetType: 'tenant',
      targetId: tenant.id,
      after: toTenantView(tenant),
    });
    return tenant;
  });
}

const TENANTS = defineListing('tenants', 1, (t: Tenant) => [t.name]);

/** Tenants by name, a page at a time (every tenant without `page.limit`). */
export async function listTenants(
  ctx: ServiceContext,
  actor: Actor,
  page: PageRequest = {},
): Promise<Page<Tenant>> {
  // Tenant roles see exactly their own tenant.
  const onlyTenant = actor.kind === 'admin' && actor.role !== 'gateway_admin' ? actor.tenantId : undefined;
  if (onlyTenant === undefined) authorize(actor, 'tenant.list', null);
  else if (onlyTenant === null) return { items: [], nextCursor: null };
  else authorize(actor, 'tenant.read', onlyTenant);
  const query = ctx.db
    .selectFrom('tenants')
    .selectAll()
    .$if(onlyTenant !== undefined, (q) => q.where('id', '=', onlyTenant!));
  return readPage(TENANTS, query, 'name', page);
}

export async function getTenant(ctx: ServiceContext, actor: Actor, idOrName: string): Promise<Tenant> {
  const tenant = await findTenant(ctx.db, idOrName);
  if (!tenant) throw new KeygateError('KG_NOT_FOUND', `tenant ${idOrName} not found`);
  authorize(actor, 'tenant.read', tenant.id);
  return tenant;
}

/** Looks a tenant up by id or by name (the CLI accepts either). */
export async function findTenant(db: Db, idOrName: string): Promise<Tenant | undefined> {
  return db
    .selectFrom('tenants')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
    .executeTakeFirst();
}

/** Resolves a tenant id or name to the id, or throws 404. */
export async function resolveTenantId(db: Db, idOrName: string): Promise<string> {
  const tenant = await findTenant(db, idOrName);
  if (!tenant) throw new KeygateError('KG_NOT_FOUND', `tenant ${idOrName} not found`);
  return tenant.id;
}
