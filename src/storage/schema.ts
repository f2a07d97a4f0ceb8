/**
 * Every table's types in one file (kysely style). Timestamps are UTC strings
 * `YYYY-MM-DD HH:MM:SS.mmm` in both dialects, so rows read back identically from MySQL and SQLite.
 * Booleans are 0/1 integers for the same reason.
 */
import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

export interface TenantsTable {
  id: string;
  name: string;
  created_at: string;
}

export type AdminRole = 'gateway_admin' | 'tenant_admin' | 'tenant_developer';

export interface AdminTokensTable {
  id: string;
  /** null only for gateway_admin tokens. */
  tenant_id: string | null;
  role: AdminRole;
  name: string;
  token_hash: string;
  created_by: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

export interface ServiceTokensTable {
  id: string;
  tenant_id: string;
  name: string;
  token_hash: string;
  revoked_at: string | null;
  created_at: string;
}

export interface ProvidersTable {
  id: string;
  tenant_id: string;
  name: string;
  active_version: number | null;
  /** Bumped on every activation / rollback; the optimistic-concurrency check. */
  revision: Generated<number>;
  created_at: string;
  updated_at: string;
}

export interface ProviderVersionsTable {
  id: string;
  provider_id: string;
  tenant_id: string;
  version: number;
  /** The provider config as JSON (scripts inline). */
  config: string;
  created_by: string | null;
  created_at: string;
}

export interface SecretsTable {
  id: string;
  tenant_id: string;
  provider: string;
  name: string;
  sensitive: number;
  /** base64(iv | ciphertext | tag), AES-256-GCM under the data key. */
  ciphertext: string;
  /** The data key as wrapped by the KMS, base64. */
  wrapped_key: string;
  kms_key_id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export type RateLimitAlgorithm = 'token-bucket' | 'gcra';
export type OnRedisDown = 'fail-open' | 'fail-closed' | 'local';

export interface PartnerKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  algorithm: RateLimitAlgorithm;
  rate: number;
  period_seconds: number;
  burst: number;
  on_redis_down: OnRedisDown;
  status: 'active' | 'revoked';
  created_at: string;
  revoked_at: string | null;
  /** JSON array of the key's scopes; null = none. */
  scopes: string | null;
}

export interface PartnerKeySecretsTable {
  id: string;
  key_id: string;
  version: number;
  ciphertext: string;
  wrapped_key: string;
  kms_key_id: string;
  created_at: string;
  retired_at: string | null;
}

export interface RoutesTable {
  id: string;
  tenant_id: string;
  prefix: string;
  upstream: string;
  timeout_ms: number;
  /** JSON array of partner key ids allowed on the route; null = every key of the tenant. */
  key_ids: string | null;
  /** JSON array of scopes whose keys may call the route; null = no scope restriction. */
  scopes: string | null;
  created_at: string;
  updated_at: string;
}

export type AuditOutcome =
  | 'ok'
  | 'bad_request'
  | 'bad_signature'
  | 'replayed'
  | 'unknown_key'
  | 'revoked_key'
  | 'forbidden'
  | 'not_found'
  | 'too_large'
  | 'rate_limited'
  | 'upstream_error'
  | 'error';

export interface AuditLogTable {
  request_id: string;
  tenant_id: string | null;
  key_id: string | null;
  secret_version: number | null;
  client_ip: string | null;
  method: string;
  path: string;
  query: string;
  request_headers: string;
  request_body: string;
  request_body_truncated: number;
  response_status: number;
  response_headers: string;
  response_body: string;
  response_body_truncated: number;
  latency_ms: number;
  outcome: AuditOutcome;
  created_at: string;
}

export interface AdminAuditTable {
  id: string;
  tenant_id: string | null;
  /** JSON of the Actor (who acted). */
  actor: string;
  action: string;
  target_type: string;
  target_id: string;
  before_state: string | null;
  after_state: string | null;
  created_at: string;
}

export interface Database {
  tenants: TenantsTable;
  admin_tokens: AdminTokensTable;
  service_tokens: ServiceTokensTable;
  providers: ProvidersTable;
  provider_versions: ProviderVersionsTable;
  secrets: SecretsTable;
  partner_keys: PartnerKeysTable;
  partner_key_secrets: PartnerKeySecretsTable;
  routes: RoutesTable;
  audit_log: AuditLogTable;
  admin_audit: AdminAuditTable;
}

export type Tenant = Selectable<TenantsTable>;
export type AdminToken = Selectable<AdminTokensTable>;
export type ServiceToken = Selectable<ServiceTokensTable>;
export type Provider = Selectable<ProvidersTable>;
export type ProviderVersion = Selectable<ProviderVersionsTable>;
export type SecretRow = Selectable<SecretsTable>;
export type PartnerKey = Selectable<PartnerKeysTable>;
export type PartnerKeySecret = Selectable<PartnerKeySecretsTable>;
export type Route = Selectable<RoutesTable>;
export type AuditLogRow = Selectable<AuditLogTable>;
export type NewAuditLogRow = Insertable<AuditLogTable>;
export type AdminAuditRow = Selectable<AdminAuditTable>;
export type ProviderUpdate = Updateable<ProvidersTable>;
