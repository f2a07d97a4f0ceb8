import type { Socket } from 'node:net';
import { sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { PoolConnection } from 'mysql2';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, DIALECTS, MYSQL_ADMIN_URL, type TestDatabase } from '../../test/helpers/db.ts';
import { sampleRow } from '../inbound/audit/test-fixtures.ts';
import { createDatabase, fromDbTime, mysqlPoolOf, toDbTime } from './db.ts';
import { fileMigrations, migrateToLatest } from './migrate.ts';

describe.each(DIALECTS)('storage on %s', (dialect) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await t.drop();
  });

  it('migrates once and is idempotent', async () => {
    expect(await migrateToLatest(t.db)).toEqual([]);
  });

  it('undoes the later migrations with their down() and applies them again', async () => {
    const migrator = new Migrator({ db: t.db, provider: fileMigrations });
    const later = (await migrator.getMigrations()).slice(1).map((m) => m.name);
    expect(later.length).toBeGreaterThan(0);
    for (const name of [...later].reverse()) {
      const { error, results } = await migrator.migrateDown();
      expect(error).toBeUndefined();
      expect(results).toEqual([
        expect.objectContaining({ migrationName: name, direction: 'Down', status: 'Success' }),
      ]);
    }
    await expect(t.db.selectFrom('routes').select('scopes').execute()).rejects.toThrow();
    expect(await migrateToLatest(t.db)).toEqual(later);
    expect(await t.db.selectFrom('routes').select('scopes').execute()).toEqual([]);
  });

  it('round-trips timestamps and rejects duplicate tenant names', async () => {
    const now = toDbTime(Date.UTC(2026, 10, 23, 5, 6, 7, 89));
    await t.db.insertInto('tenants').values({ id: 'ten_1', name: 'acme', created_at: now }).execute();
    const row = await t.db
      .selectFrom('tenants')
      .selectAll()
      .where('id', '=', 'ten_1')
      .executeTakeFirstOrThrow();
    expect(row.created_at).toBe('2026-11-23 05:06:07.089');
    expect(fromDbTime(row.created_at)).toBe(Date.UTC(2026, 10, 23, 5, 6, 7, 89));
    await expect(
      t.db.insertInto('tenants').values({ id: 'ten_2', name: 'acme', created_at: now }).execute(),
    ).rejects.toThrow();
  });

  it('keeps secret names that differ only by case apart (scripts and the AAD tell them apart)', async () => {
    const row = (name: string, n: number) => ({
      id: `sec_case_${n}`,
      tenant_id: 'ten_case',
      provider: 'acme',
      name,
      sensitive: 1,
      ciphertext: 'c',
      wrapped_key: 'w',
      kms_key_id: 'k',
      version: 1,
      created_at: toDbTime(),
      updated_at: toDbTime(),
    });
    await t.db
      .insertInto('secrets')
      .values([row('AppKey', 1), row('appkey', 2)])
      .execute();
    const names = await t.db
      .selectFrom('secrets')
      .select('name')
      .where('tenant_id', '=', 'ten_case')
      .execute();
    expect(names.map((r) => r.name).sort()).toEqual(['AppKey', 'appkey']);
    expect(
      await t.db
        .selectFrom('secrets')
        .select('id')
        .where('tenant_id', '=', 'ten_case')
        .where('name', '=', 'APPKEY')
        .execute(),
    ).toEqual([]);
  });

  it('runs transactions that roll back on error', async () => {
    await expect(
      t.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('tenants')
          .values({ id: 'ten_3', name: 'rolled', created_at: toDbTime() })
          .execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const row = await t.db.selectFrom('tenants').select('id').where('id', '=', 'ten_3').executeTakeFirst();
    expect(row).toBeUndefined();
  });
});

describe('a MySQL database whose default character set is latin1', () => {
  const name = `kg_t_latin1_${process.pid}`;
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  const admin = () => createConnection(MYSQL_ADMIN_URL);

  afterAll(async () => {
    const c = await admin();
    await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await c.end();
  });

  it('gets utf8mb4 tables from the migrations, so audit text keeps every character', async () => {
    const c = await admin();
    await c.query(`CREATE DATABASE \`${name}\` CHARACTER SET latin1`);
    // Another application's table in the same database is left as it is.
    await c.query(`CREATE TABLE \`${name}\`.other_app (v varchar(10)) CHARACTER SET latin1`);
    await c.end();
    const { db } = createDatabase({ databaseUrl: url.toString(), dataDir: '/nonexistent' });
    try {
      // Rows written before the conversion keep their (latin1) text.
      const migrator = new Migrator({ db, provider: fileMigrations });
      expect((await migrator.migrateTo('2026-11-23T0003-partner-key-scopes')).error).toBeUndefined();
      await db
        .insertInto('audit_log')
        .values(sampleRow('req_before', { path: '/café', request_body: 'héllo' }))
        .execute();
      await migrateToLatest(db);
      expect(
        await db
          .selectFrom('audit_log')
          .select('path')
          .where('request_id', '=', 'req_before')
          .executeTakeFirst(),
      ).toEqual({ path: '/café' });
      const { rows } = await sql<{ name: string; collation: string }>`
        select table_name as name, table_collation as collation from information_schema.tables
        where table_schema = database()`.execute(db);
      expect(rows.length).toBeGreaterThan(5);
      for (const row of rows) {
        if (row.name === 'other_app') expect(row.collation).toMatch(/^latin1/);
        else expect(row.collation, row.name).toMatch(/^utf8mb4/);
      }

      const text = '{"name":"中文","e":"😀","ü":"é"}';
      await db
        .insertInto('audit_log')
        .values(sampleRow('req_utf8', { request_body: text, path: '/ü/😀' }))
        .execute();
      const stored = await db
        .selectFrom('audit_log')
        .select(['request_body', 'path'])
        .where('request_id', '=', 'req_utf8')
        .executeTakeFirstOrThrow();
      expect(stored).toEqual({ request_body: text, path: '/ü/😀' });
    } finally {
      await db.destroy();
    }
  });
});

describe('destroying a MySQL database', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase('mysql');
  });
  afterAll(async () => {
    await t.drop();
  });

  const connectionOf = (pool: NonNullable<ReturnType<typeof mysqlPoolOf>>) =>
    new Promise<PoolConnection>((resolve, reject) =>
      pool.getConnection((err, c) => (err ? reject(err) : resolve(c))),
    );

  it('ends its pool even when only the pool was used (as by the audit writer), not Kysely', async () => {
    const { db } = createDatabase({ databaseUrl: t.databaseUrl, dataDir: '/nonexistent' });
    const pool = mysqlPoolOf(db)!;
    const connection = await connectionOf(pool);
    const socket = (connection as unknown as { stream: Socket }).stream;
    connection.release();
    await db.destroy();
    // The idle connection is closed (it would keep the process alive), and no other is handed out.
    await vi.waitFor(() => expect(socket.destroyed).toBe(true), { timeout: 10_000 });
    await expect(connectionOf(pool)).rejects.toThrow(/closed/i);
  });

  it('ends its pool once when Kysely ran queries too', async () => {
    const { db } = createDatabase({ databaseUrl: t.databaseUrl, dataDir: '/nonexistent' });
    await sql`select 1`.execute(db);
    const pool = mysqlPoolOf(db)!;
    connectionOf(pool).then((c) => c.release());
    await db.destroy();
    await db.destroy();
    await expect(connectionOf(pool)).rejects.toThrow(/closed/i);
  });
});

describe('toDbTime', () => {
  it('writes UTC milliseconds, reusing the second it wrote last', () => {
    const base = Date.UTC(2026, 10, 23, 23, 59, 59, 0);
    for (const ms of [
      base,
      base + 7,
      base + 999,
      base + 1000,
      base + 1001,
      base - 1,
      0,
      Date.UTC(1969, 11, 31, 23, 59, 59, 999),
    ]) {
      expect(toDbTime(ms)).toBe(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''));
      expect(fromDbTime(toDbTime(ms))).toBe(ms);
    }
    expect(toDbTime(new Date(base + 42))).toBe('2026-11-23 23:59:59.042');
    expect(() => toDbTime(Number.NaN)).toThrow(RangeError);
  });
});
