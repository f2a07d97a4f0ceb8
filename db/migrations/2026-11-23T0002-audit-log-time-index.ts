// The gateway-wide inbound audit listing (a gateway admin's, across tenants) reads the newest rows
// first: without an index on the time it sorted the whole audit_log for every page.
import { type Kysely, SqliteAdapter } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('audit_log_time')
    .on('audit_log')
    .columns(['created_at', 'request_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  // MySQL names the table of an index to drop; SQLite's DROP INDEX takes no ON clause.
  const drop = db.schema.dropIndex('audit_log_time');
  await (db.getExecutor().adapter instanceof SqliteAdapter ? drop : drop.on('audit_log')).execute();
}
