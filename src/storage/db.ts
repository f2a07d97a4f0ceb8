/**
 * The Kysely database: MySQL (mysql2) when DATABASE_URL is set, embedded SQLite (node:sqlite)
 * otherwise. Both dialects run the same repository code and the same migrations.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, type KyselyConfig, MysqlDialect, type MysqlPool, SqliteDialect } from 'kysely';
import { createPool, type Pool } from 'mysql2';
import { openNodeSqlite } from './node-sqlite.ts';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;
export type DbDialect = 'mysql' | 'sqlite';

export interface DatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
}

const mysqlPools = new WeakMap<Db, Pool>();

/**
 * The mysql2 pool behind a MySQL database made by createDatabase, for the one statement that
 * needs mysql2's prepared statements, which Kysely's driver does not use (the audit insert, see
 * inbound/audit/insert.ts); undefined for SQLite and for a Kysely instance made elsewhere.
 */
export function mysqlPoolOf(db: Db): Pool | undefined {
  return mysqlPools.get(db);
}

/**
 * A MySQL database whose destroy() always ends its mysql2 pool. Kysely ends the pool only if it ran
 * a query itself (its driver is initialized on first use), and the audit writer takes its
 * connections from the pool directly (mysqlPoolOf): a Db used only by the writer would otherwise
 * keep its connections, and the process, alive after destroy().
 */
class MysqlDb extends Kysely<Database> {
  readonly #endPool: () => Promise<void>;
  constructor(config: KyselyConfig, endPool: () => Promise<void>) {
    super(config);
    this.#endPool = endPool;
  }
  override async destroy(): Promise<void> {
    try {
      await super.destroy();
    } finally {
      await this.#endPool();
    }
  }
}

export function createDatabase({ databaseUrl, dataDir }: DatabaseOptions): { db: Db; dialect: DbDialect } {
  if (databaseUrl) {
    const pool = createPool({
      uri: databaseUrl,
      connectionLimit: 10,
      // Timestamps travel as strings in both dialects (see schema.ts).
      dateStrings: true,
      timezone: 'Z',
      connectTimeout: 5000,
      // An idle connection whose server vanished without closing it (its host died, a firewall
      // dropped the connection's state) is found by TCP keep-alive probes that start after 30 s
      // idle rather than the OS default (2 hours on Linux), and leaves the pool.
      enableKeepAlive: true,
      keepAliveInitialDelay: 30_000,
      supportBigNumbers: true,
    });
    // Ends the pool once, whoever asks first: Kysely (when it ran a query) or MysqlDb.destroy.
    let ended: Promise<void> | undefined;
    const endPool = () =>
      (ended ??= new Promise<void>((resolve, reject) => pool.end((err) => (err ? reject(err) : resolve()))));
    const dialectPool: MysqlPool = {
      getConnection: (callback) => pool.getConnection(callback),
      end: (callback) => void endPool().then(() => callback(undefined), callback),
    };
    const db = new MysqlDb({ dialect: new MysqlDialect({ pool: dialectPool }) }, endPool);
    mysqlPools.set(db, pool);
    return { db, dialect: 'mysql' };
  }
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'keygate.sqlite');
  return {
    db: new Kysely<Database>({ dialect: new SqliteDialect({ database: openNodeSqlite(file) }) }),
    dialect: 'sqlite',
  };
}

let dbTimeSecond = Number.NaN;
let dbTimePrefix = '';

/** UTC timestamp in the storage format `YYYY-MM-DD HH:MM:SS.mmm`. */
export function toDbTime(date: Date | number = Date.now()): string {
  const ms = typeof date === 'number' ? date : date.getTime();
  const second = Math.floor(ms / 1000);
  // Audit rows stamp every call: the date and time up to the second are written once per second.
  if (second !== dbTimeSecond) {
    const iso = new Date(second * 1000).toISOString(); // 2026-11-23T08:07:39.000Z (throws if invalid)
    dbTimePrefix = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
    dbTimeSecond = second;
  }
  return `${dbTimePrefix}.${String(ms - second * 1000).padStart(3, '0')}`;
}

/**
 * A storage timestamp as every user sees it: ISO 8601 UTC (`2026-11-24T04:07:12.000Z`), the same
 * from SQLite and MySQL. A value that is ISO already passes through.
 */
export function isoTime(value: string): string;
export function isoTime(value: string | null): string | null;
export function isoTime(value: string | null): string | null {
  if (value === null) return null;
  if (value.includes('T')) return value;
  return `${value.replace(' ', 'T')}Z`;
}

/** Parses a storage timestamp back into epoch milliseconds. */
export function fromDbTime(value: string): number {
  return Date.parse(`${value.replace(' ', 'T')}Z`);
}
