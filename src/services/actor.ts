/**
 * Who is acting, and what each role may do. Services call `authorize` first, so the CLI and the
 * admin API share one permission check.
 */
import { KeygateError } from '../errors.ts';
import type { AdminRole } from '../storage/schema.ts';

export type Actor =
  /** An operator on the server (the CLI): full access, like gateway_admin. */
  | { kind: 'cli' }
  /** A caller of the admin API, identified by its admin token. */
  | { kind: 'admin'; tokenId: string; role: AdminRole; tenantId: string | null };

export const PERMISSIONS = {
  'tenant.create': ['gateway_admin'],
  'tenant.list': ['gateway_admin'],
  'tenant.read': ['gateway_admin', 'tenant_admin', 'tenant_developer'],
  'member.manage': ['gateway_admin', 'tenant_admin'],
  'service-token.manage': ['gateway_admin', 'tenant_admin'],
  'provider.read': ['gateway_admin', 'tenant_admin', 'tenant_developer'],
  'provider.draft': ['gateway_admin', 'tenant_admin', 'tenant_developer'],
  'provider.activate': ['gateway_admin', 'tenant_admin'],
  'secret.manage': ['gateway_admin', 'tenant_admin'],
  'partner-key.manage': ['gateway_admin', 'tenant_admin'],
  'route.manage': ['gateway_admin', 'tenant_admin'],
  'audit.read': ['gateway_admin', 'tenant_admin', 'tenant_developer'],
  'script.test': ['gateway_admin', 'tenant_admin', 'tenant_developer'],
  /** Deleting inbound audit rows of every tenant (`keygate audit purge`). */
  'audit.purge': ['gateway_admin'],
  /** Gateway-wide admin tokens (tenant_id null): only gateway admins see or revoke them. */
  'gateway-token.manage': ['gateway_admin'],
} as const satisfies Record<string, readonly AdminRole[]>;

export type Permission = keyof typeof PERMISSIONS;

/**
 * Throws KG_FORBIDDEN unless the actor holds the permission for `tenantId`
 * (`null` = a gateway-wide action). A tenant role never reaches another tenant.
 */
export function authorize(actor: Actor, permission: Permission, tenantId: string | null): void {
  if (actor.kind === 'cli') return;
  const roles: readonly AdminRole[] = PERMISSIONS[permission];
  if (!roles.includes(actor.role)) {
    throw new KeygateError('KG_FORBIDDEN', `role ${actor.role} may not ${permission}`);
  }
  if (actor.role === 'gateway_admin') return;
  if (tenantId === null || actor.tenantId !== tenantId) {
    throw new KeygateError('KG_FORBIDDEN', `role ${actor.role} is limited to its own tenant`);
  }
}

/** Whether the actor holds the permission for `tenantId`, as `authorize` decides, without throwing. */
export function mayDo(actor: Actor, permission: Permission, tenantId: string | null): boolean {
  try {
    authorize(actor, permission, tenantId);
    return true;
  } catch {
    return false;
  }
}

/** A stable, secret-free description of the actor for audit rows. */
export function describeActor(actor: Actor): string {
  return JSON.stringify(
    actor.kind === 'cli' ? { kind: 'cli' } : { kind: 'admin', tokenId: actor.tokenId, role: actor.role },
  );
}
