// Scopes (DESIGN.md "Routes": a route lists which partner keys, or scopes, may call it): a key
// holds scopes, a route may admit every key holding one of its scopes. Both are JSON arrays of
// strings; null on a key = no scopes, null on a route = no scope restriction.
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('partner_keys').addColumn('scopes', 'text').execute();
  await db.schema.alterTable('routes').addColumn('scopes', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('routes').dropColumn('scopes').execute();
  await db.schema.alterTable('partner_keys').dropColumn('scopes').execute();
}
