// The admin API's listings page in the order of a user-chosen string (keyset paging: `where key >
// cursor order by key`), and SQLite compares those strings as bytes while MySQL's default
// collations do not: utf8mb4_general_ci ignores case and sorts `_` after the letters, so a route
// listing came back in another order on MySQL (`/orders` beside `/Orders`, `/aab` before `/a_b`)
// and so did tenants, providers and secrets (`a_b` against `aab`). Worse for routes, whose prefixes
// are matched case-sensitively: the unique (tenant, prefix) index refused `/Orders` beside
// `/orders`, and removing `/orders` by prefix could remove `/Orders`.
//
// These columns now compare as bytes on MySQL too (utf8mb4_bin), as secret names already do since
// 0004: the order, the cursor's comparison, equality and the unique indexes are those of SQLite,
// and the indexes still serve the listings. Tenant and provider names hold only lower-case ASCII,
// so no two of them that were distinct become equal or the reverse; a lookup by a name in another
// case (`ACME` for `acme`) no longer finds it on MySQL, as on SQLite. SQLite compares every column
// as bytes already. Only columns not binary yet are altered, so running this again does nothing.
import { type Kysely, SqliteAdapter, sql } from 'kysely';

const SORT_KEYS = [
  { table: 'routes', column: 'prefix', type: 'varchar(255)' },
  { table: 'tenants', column: 'name', type: 'varchar(100)' },
  { table: 'providers', column: 'name', type: 'varchar(100)' },
  { table: 'secrets', column: 'provider', type: 'varchar(100)' },
] as const;

export async function up(db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) return;
  const { rows } = await sql<{ tbl: string; col: string }>`
    select table_name as tbl, column_name as col from information_schema.columns
    where table_schema = database()
      and (${sql.join(
        SORT_KEYS.map((k) => sql`(table_name = ${k.table} and column_name = ${k.column})`),
        sql` or `,
      )})
      and collation_name <> 'utf8mb4_bin'`.execute(db);
  for (const key of SORT_KEYS) {
    if (!rows.some((r) => r.tbl === key.table && r.col === key.column)) continue;
    await sql`alter table ${sql.table(key.table)} modify ${sql.ref(key.column)} ${sql.raw(key.type)}
      character set utf8mb4 collate utf8mb4_bin not null`.execute(db);
  }
}

export async function down(): Promise<void> {
  // Nothing to undo safely: route prefixes that differ only by case may exist now, and the
  // case-insensitive unique index would refuse them.
}
