import type { AdminApp, AdminDeps } from '../env.ts';
import { registerCreateMember } from './create.ts';
import { registerListMembers } from './list.ts';
import { registerRevokeMember } from './revoke.ts';

/** Members of a tenant are its admin tokens (tenant_admin / tenant_developer). */
export function registerMemberRoutes(app: AdminApp, deps: AdminDeps): void {
  registerCreateMember(app, deps);
  registerListMembers(app, deps);
  registerRevokeMember(app, deps);
}
