import type { AdminApp, AdminDeps } from '../env.ts';
import { registerAdminAuditRoutes } from './admin-audit.ts';
import { registerAuditLogRoutes } from './audit-log.ts';

export function registerAuditRoutes(app: AdminApp, deps: AdminDeps): void {
  registerAdminAuditRoutes(app, deps);
  registerAuditLogRoutes(app, deps);
}
