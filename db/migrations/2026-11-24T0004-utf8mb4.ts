// Tables made in a database whose default character set is not utf8mb4 (MariaDB's built-in default
// before 11.6 is latin1) stored audit bodies, headers and paths with every character outside it
// turned into '?', silently (the audit insert ignores warnings so that one odd row cannot block a
// batch). This converts such tables, and the database's default for tables made later; on a
// database that is utf8mb4 already (the usual case) it changes nothing. SQLite stores UTF-8 as is.
import { type Kysely, SqliteAdapter, sql } from 'kysely';

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
      and table_collation not like 'utf8mb4%'`.execute(db);
  for (const { name } of tables) {
    await sql`alter table ${sql.table(name)} convert to character set utf8mb4`.execute(db);
  }
}

export async function down(): Promise<void> {
  // Converting back could lose characters the old set cannot hold: utf8mb4 stays.
}
