import type { AdminApp, AdminDeps } from '../env.ts';
import { registerDeleteSecret } from './delete.ts';
import { registerListSecrets } from './list.ts';
import { registerPutSecret } from './put.ts';

/** Provider secrets, write-only: values go in; names and update times come out. */
export function registerSecretRoutes(app: AdminApp, deps: AdminDeps): void {
  registerListSecrets(app, deps);
  registerPutSecret(app, deps);
  registerDeleteSecret(app, deps);
}
