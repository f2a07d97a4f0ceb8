/**
 * Fresh databases for tests: a uniquely named MySQL database on the machine's MariaDB (dropped
 * afterwards) or a temporary SQLite file. Tests never share schema state.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { createDatabase, type Db, type DbDialect } from '../../src/storage/db.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';

export const MYSQL_ADMIN_URL = process.env.KEYGATE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
export const REDIS_TEST_URL = process.env.KEYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestDatabase {
  dialect: DbDialect;
  /** DATABASE_URL for a keygate process (undefined for SQLite: use dataDir). */
  databaseUrl: string | undefined;
  dataDir: string;
  db: Db;
  drop(): Promise<void>;
}

/** Creates an empty, migrated database of the given dialect. */
export async function createTestDatabase(dialect: DbDialect): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-test-'));
  let databaseUrl: string | undefined;
  let dropMysql = async () => {};
  if (dialect === 'mysql') {
    const name = `kg_t_${randomBytes(6).toString('hex')}`;
    const admin = await createConnection(MYSQL_ADMIN_URL);
    await admin.query(`CREATE DATABASE \`${name}\``);
    await admin.end();
    const url = new URL(MYSQL_ADMIN_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropMysql = async () => {
      const c = await createConnection(MYSQL_ADMIN_URL);
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await c.end();
    };
  }
  const { db } = createDatabase({ databaseUrl, dataDir });
  await migrateToLatest(db);
  return {
    dialect,
    databaseUrl,
    dataDir,
    db,
    async drop() {
      await db.destroy();
      await dropMysql();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const DIALECTS: DbDialect[] = ['mysql', 'sqlite'];
