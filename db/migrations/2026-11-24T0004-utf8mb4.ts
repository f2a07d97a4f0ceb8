// Tables made in a database whose default character set is not utf8mb4 (MariaDB's built-in default
// before 11.6 is latin1) stored audit bodies, headers and paths with every character outside it
// turned into '?', silently (the audit insert ignores warnings so that one odd row cannot block a
// batch). This converts keygate's own tables (never another application's in the same database)
// and the database's default for tables made later; on a database that is utf8mb4 already (the
// usual case) it converts nothing. Converting copies the table: on a large audit_log run
// `keygate migrate` before rolling out.
//
// Secret names are case-sensitive everywhere else (scripts, the AAD, SQLite), but MySQL compared
// them ignoring case: setting `appkey` overwrote `AppKey`, sealed for the other name. They now
// compare as bytes. SQLite stores UTF-8 and compares names as bytes already.
import { type Kysely, SqliteAdapter, sql } from 'kysely';

const KEYGATE_TABLES = [
  'admin_audit',
  'admin_tokens',
  'audit_log',
  'partner_key_secrets',
  'partner_keys',
  'provider_versions',
  'providers',
  'routes',
  'secrets',
  'service_tokens',
  'tenants',
  'kysely_migration',
  'kysely_migration_lock',
];

export async function up(db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) return;
  const { rows: defaults } = await sql<{ charset: string }>`
    select default_character_set_name as charset from information_schema.schemata
    where schema_name = database()`.execute(db);
  if (defaults[0] && !defaults[0].charset.startsWith('utf8mb4')) {
    await sql`alter database character set utf8mb4`.execute(db);
  }
  const { rows: tables } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = database() and table_type = 'BASE TABLE'
      and table_collation not like 'utf8mb4%'
      and table_name in (${sql.join(KEYGATE_TABLES)})`.execute(db);
  for (const { name } of tables) {
    await sql`alter table ${sql.table(name)} convert to character set utf8mb4`.execute(db);
  }
  await sql`alter table secrets modify name varchar(100) character set utf8mb4 collate utf8mb4_bin not null`.execute(
    db,
  );
}

export async function down(): Promise<void> {
  // Nothing to undo safely: names that differ only by case may exist now, and converting the
  // character set back could lose characters the old one cannot hold.
}
