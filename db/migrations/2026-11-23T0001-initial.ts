// The initial schema. Migrations take Kysely<any> and never import application code. Column types
// are chosen to mean the same on MySQL and SQLite (SQLite accepts any type name).
import { type Kysely, sql } from 'kysely';

const ts = 'datetime(3)';
const id = 'varchar(40)';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('name', 'varchar(100)', (c) => c.notNull().unique())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('admin_tokens')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id)
    .addColumn('role', 'varchar(32)', (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('token_hash', 'char(64)', (c) => c.notNull().unique())
    .addColumn('created_by', id)
    .addColumn('expires_at', ts)
    .addColumn('revoked_at', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('admin_tokens_tenant').on('admin_tokens').column('tenant_id').execute();

  await db.schema
    .createTable('service_tokens')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('token_hash', 'char(64)', (c) => c.notNull().unique())
    .addColumn('revoked_at', ts)
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('service_tokens_tenant').on('service_tokens').column('tenant_id').execute();

  await db.schema
    .createTable('providers')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('active_version', 'integer')
    .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addUniqueConstraint('providers_tenant_name', ['tenant_id', 'name'])
    .execute();

  await db.schema
    .createTable('provider_versions')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('provider_id', id, (c) => c.notNull())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('config', sql.raw('mediumtext'), (c) => c.notNull())
    .addColumn('created_by', id)
    .addColumn('created_at', ts, (c) => c.notNull())
    .addUniqueConstraint('provider_versions_provider_version', ['provider_id', 'version'])
    .execute();

  await db.schema
    .createTable('secrets')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('provider', 'varchar(100)', (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('sensitive', 'integer', (c) => c.notNull())
    .addColumn('ciphertext', 'text', (c) => c.notNull())
    .addColumn('wrapped_key', 'text', (c) => c.notNull())
    .addColumn('kms_key_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addUniqueConstraint('secrets_tenant_provider_name', ['tenant_id', 'provider', 'name'])
    .execute();

  await db.schema
    .createTable('partner_keys')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('algorithm', 'varchar(16)', (c) => c.notNull())
    .addColumn('rate', 'integer', (c) => c.notNull())
    .addColumn('period_seconds', 'integer', (c) => c.notNull())
    .addColumn('burst', 'integer', (c) => c.notNull())
    .addColumn('on_redis_down', 'varchar(16)', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('revoked_at', ts)
    .execute();
  await db.schema.createIndex('partner_keys_tenant').on('partner_keys').column('tenant_id').execute();

  await db.schema
    .createTable('partner_key_secrets')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('key_id', id, (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('ciphertext', 'text', (c) => c.notNull())
    .addColumn('wrapped_key', 'text', (c) => c.notNull())
    .addColumn('kms_key_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('retired_at', ts)
    .addUniqueConstraint('partner_key_secrets_key_version', ['key_id', 'version'])
    .execute();

  await db.schema
    .createTable('routes')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id, (c) => c.notNull())
    .addColumn('prefix', 'varchar(255)', (c) => c.notNull())
    .addColumn('upstream', 'varchar(2048)', (c) => c.notNull())
    .addColumn('timeout_ms', 'integer', (c) => c.notNull())
    .addColumn('key_ids', 'text')
    .addColumn('created_at', ts, (c) => c.notNull())
    .addColumn('updated_at', ts, (c) => c.notNull())
    .addUniqueConstraint('routes_tenant_prefix', ['tenant_id', 'prefix'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('request_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('tenant_id', id)
    .addColumn('key_id', id)
    .addColumn('secret_version', 'integer')
    .addColumn('client_ip', 'varchar(64)')
    .addColumn('method', 'varchar(16)', (c) => c.notNull())
    .addColumn('path', 'varchar(2048)', (c) => c.notNull())
    .addColumn('query', 'text', (c) => c.notNull())
    .addColumn('request_headers', 'text', (c) => c.notNull())
    .addColumn('request_body', sql.raw('mediumtext'), (c) => c.notNull())
    .addColumn('request_body_truncated', 'integer', (c) => c.notNull())
    .addColumn('response_status', 'integer', (c) => c.notNull())
    .addColumn('response_headers', 'text', (c) => c.notNull())
    .addColumn('response_body', sql.raw('mediumtext'), (c) => c.notNull())
    .addColumn('response_body_truncated', 'integer', (c) => c.notNull())
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('outcome', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('audit_log_tenant_time')
    .on('audit_log')
    .columns(['tenant_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('audit_log_key_time')
    .on('audit_log')
    .columns(['key_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('admin_audit')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('tenant_id', id)
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('target_type', 'varchar(32)', (c) => c.notNull())
    .addColumn('target_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('before_state', sql.raw('mediumtext'))
    .addColumn('after_state', sql.raw('mediumtext'))
    .addColumn('created_at', ts, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('admin_audit_tenant_time')
    .on('admin_audit')
    .columns(['tenant_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'admin_audit',
    'audit_log',
    'routes',
    'partner_key_secrets',
    'partner_keys',
    'secrets',
    'provider_versions',
    'providers',
    'service_tokens',
    'admin_tokens',
    'tenants',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
