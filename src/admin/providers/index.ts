import type { AdminApp, AdminDeps } from '../env.ts';
import { registerActivateVersion } from './activate.ts';
import { registerCreateVersion } from './create-version.ts';
import { registerDiffVersions } from './diff.ts';
import { registerDryRun } from './dry-run.ts';
import { registerGetProvider } from './get.ts';
import { registerGetVersion } from './get-version.ts';
import { registerListProviders } from './list.ts';
import { registerListVersions } from './list-versions.ts';
import { registerRollback } from './rollback.ts';

export function registerProviderRoutes(app: AdminApp, deps: AdminDeps): void {
  registerListProviders(app, deps);
  registerGetProvider(app, deps);
  registerCreateVersion(app, deps);
  registerListVersions(app, deps);
  registerGetVersion(app, deps);
  registerDiffVersions(app, deps);
  registerActivateVersion(app, deps);
  registerRollback(app, deps);
  registerDryRun(app, deps);
}
