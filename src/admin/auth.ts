/**
 * Admin API authentication: `Authorization: Bearer <admin token>` -> the acting identity. Roles
 * are checked by the services (PERMISSIONS in services/actor.ts), the same check the CLI goes
 * through; this file only establishes who is calling.
 */
import type { MiddlewareHandler } from 'hono';
import { KeygateError } from '../errors.ts';
import { findTenant } from '../services/tenants.ts';
import { authenticateAdminToken } from '../services/tokens.ts';
import type { Db } from '../storage/db.ts';
import type { AdminActor, AdminEnv } from './env.ts';

const BEARER = /^Bearer[ \t]+([\x21-\x7e]{1,512})[ \t]*$/i;

/** Missing / malformed / unknown token -> 401 KG_UNAUTHENTICATED; expired or revoked -> 401 KG_TOKEN_EXPIRED. */
export function authenticateAdmin({ db }: { db: Db }): MiddlewareHandler<AdminEnv> {
  return async function authenticateAdminRequest(c, next) {
    const header = c.req.header('authorization');
    const token = header ? BEARER.exec(header)?.[1] : undefined;
    if (!token) throw new KeygateError('KG_UNAUTHENTICATED', 'send Authorization: Bearer <admin token>');
    let actor: AdminActor;
    try {
      actor = await authenticateAdminToken(db, token);
    } catch (err) {
      if (err instanceof KeygateError) throw err;
      throw new KeygateError('KG_NOT_READY', 'admin token store unreachable', {}, { cause: err });
    }
    c.set('actor', actor);
    await next();
  };
}

/**
 * On `/tenants/{tenant}/...`, a tenant role naming any tenant but its own gets 403 whether that
 * tenant exists or not, so the API does not reveal other tenants' names. The services check the
 * role's permission afterwards.
 */
export function requireOwnTenant({ db }: { db: Db }): MiddlewareHandler<AdminEnv> {
  return async function requireOwnTenantScope(c, next) {
    const actor = c.get('actor');
    if (actor.role !== 'gateway_admin') {
      const named = c.req.param('tenant');
      const tenant = named ? await findTenant(db, named) : undefined;
      if (!tenant || tenant.id !== actor.tenantId) {
        throw new KeygateError('KG_FORBIDDEN', `role ${actor.role} is limited to its own tenant`);
      }
    }
    await next();
  };
}
