import type { AdminApp, AdminDeps } from '../env.ts';
import { registerCreateTenant } from './create.ts';
import { registerGetTenant } from './get.ts';
import { registerListTenants } from './list.ts';

export function registerTenantRoutes(app: AdminApp, deps: AdminDeps): void {
  registerCreateTenant(app, deps);
  registerListTenants(app, deps);
  registerGetTenant(app, deps);
}
