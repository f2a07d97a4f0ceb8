import type { Sandbox } from '../sandbox/index.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import type { Db, DbDialect } from '../storage/db.ts';

/** Announces provider activations / rollbacks to every node (Redis pub/sub, or nothing embedded). */
export interface ConfigEvents {
  publish(tenantId: string, provider: string): Promise<void>;
  subscribe(listener: (tenantId: string, provider: string) => void): () => void;
  close(): Promise<void>;
}

/** What transport-agnostic services need; built once at start-up and passed in. */
export interface ServiceContext {
  db: Db;
  dialect: DbDialect;
  secrets: SecretStore;
  sandbox: Sandbox;
  configEvents: ConfigEvents;
}
