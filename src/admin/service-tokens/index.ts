import type { AdminApp, AdminDeps } from '../env.ts';
import { registerCreateServiceToken } from './create.ts';
import { registerListServiceTokens } from './list.ts';
import { registerRevokeServiceToken } from './revoke.ts';

export function registerServiceTokenRoutes(app: AdminApp, deps: AdminDeps): void {
  registerCreateServiceToken(app, deps);
  registerListServiceTokens(app, deps);
  registerRevokeServiceToken(app, deps);
}
