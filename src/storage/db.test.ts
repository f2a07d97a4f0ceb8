import { Migrator } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../../test/helpers/db.ts';
import { fromDbTime, toDbTime } from './db.ts';
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
