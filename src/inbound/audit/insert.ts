/**
 * The one statement the audit writer runs, an idempotent multi-row insert into `audit_log`, and the
 * calls that run it (startAuditCall), each on a MySQL connection of its own that can be ended.
 */
import { CompiledQuery, SqliteAdapter, sql } from 'kysely';
import type { ExecuteValues, Pool, PoolConnection } from 'mysql2';
import { type Db, mysqlPoolOf } from '../../storage/db.ts';
import type { AuditLogTable, NewAuditLogRow } from '../../storage/schema.ts';

/**
 * Inserts rows, skipping any whose request_id is already stored, so a batch sent twice (a timed-out
 * insert that committed after all, a spool replayed after a crash) never duplicates a row:
 * `insert ignore into` on MySQL, `insert or ignore into` on SQLite. On MySQL, IGNORE also turns
 * data errors (a value too long for its column) into warnings: the row is stored clipped rather
 * than lost.
 *
 * This runs for every inbound call, so it skips Kysely's query builder: the statement text is made
 * once per dialect and row count, and the values go in as parameters in column order. On MySQL the
 * statement is a prepared one (mysql2's execute), so the values travel in the binary protocol
 * instead of as escaped SQL text: MariaDB then spends about 45 % less CPU per row, as a quarter of
 * its time went to lexing the values. To keep the number of prepared statements small (at most
 * nine shapes per connection), a batch goes in as chunks of 256, 128, ... 1 rows; a full batch of
 * the writer's default 256 rows is one statement, so one commit. A chunk that fails after others
 * went in is harmless: the whole batch is written again later, and the rows already stored are
 * skipped.
 */
export async function insertAuditRows(db: Db, rows: readonly NewAuditLogRow[]): Promise<void> {
  if (rows.length === 0) return;
  // A Kysely instance with plugins gets the query builder, so the plugins see the statement.
  if (db.getExecutor().plugins.length > 0) {
    await db.insertInto('audit_log').orIgnore().values(rows).execute();
    return;
  }
  const pool = mysqlPoolOf(db);
  if (pool !== undefined) {
    await insertPrepared(pool, rows);
    return;
  }
  const dialect = db.getExecutor().adapter instanceof SqliteAdapter ? 's' : 'm';
  await db.executeQuery(
    CompiledQuery.raw(insertStatement(dialect, rows.length), parametersOf(rows, 0, rows.length)),
  );
}

/** The prepared-statement insert on MySQL: chunks of 256, 128, ... 1 rows (see insertAuditRows). */
async function insertPrepared(target: Executes, rows: readonly NewAuditLogRow[]): Promise<void> {
  let done = 0;
  for (let size = PREPARED_CHUNK_ROWS; size >= 1; size >>= 1) {
    for (; rows.length - done >= size; done += size) {
      await execute(target, insertStatement('m', size), parametersOf(rows, done, size));
    }
  }
}

/**
 * What one call of the audit writer runs: the insert, the `select 1` that says the database
 * answers, or the `KILL QUERY` that stops, on the server, the statement of a call that timed out.
 */
export interface AuditStatements {
  insert(rows: readonly NewAuditLogRow[]): Promise<void>;
  probe(): Promise<void>;
  /** Stops the statement server thread `threadId` runs (see AuditCall.threadId); nothing on SQLite. */
  killQuery(threadId: number): Promise<void>;
}

/** One call of the audit writer, started by startAuditCall. */
export interface AuditCall<T> {
  /** Settles when the work is done, or once end() has ended the call. */
  readonly result: Promise<T>;
  /**
   * Gives the call up (it took too long). On MySQL the call runs on a pool connection of its own,
   * which this destroys: it leaves the pool, its socket is closed at once (not after the server
   * says goodbye, which a dead host or a dropped connection never does), and `result` rejects with
   * `reason`. True when the call is over; false when it cannot be ended now: it is still waiting
   * for a connection (it gives the connection back as soon as it gets one, and `result` rejects
   * then), or it runs on a database with no connection of its own to end (SQLite, which is
   * synchronous and never hangs, or a Kysely instance with plugins or made elsewhere): `result`
   * settles when the database answers.
   */
  end(reason: Error): boolean;
  /**
   * The MySQL server thread of the connection the call runs on, once it has one; undefined before
   * and on SQLite. Closing a connection does not stop the statement it runs: MySQL goes on with it
   * (an insert waiting for a lock waits up to innodb_lock_wait_timeout, 50 s, or for ever on a
   * table lock), so the caller of end() stops it with `KILL QUERY` over another connection.
   */
  readonly threadId: number | undefined;
}

/**
 * Starts `work` on a connection of its own (MySQL) or on `db`. mysql2 has no query timeout, and a
 * connection whose server vanished without closing it (its host died, a firewall dropped the
 * connection's state) stays open for as long as TCP keeps retransmitting, which is many minutes:
 * the only way to stop waiting on it is to end the connection, which end() does.
 */
export function startAuditCall<T>(db: Db, work: (statements: AuditStatements) => Promise<T>): AuditCall<T> {
  const pool = db.getExecutor().plugins.length === 0 ? mysqlPoolOf(db) : undefined;
  if (pool === undefined) {
    const statements: AuditStatements = {
      insert: (rows) => insertAuditRows(db, rows),
      probe: async () => {
        await sql`select 1`.execute(db);
      },
      killQuery: async () => {},
    };
    return {
      result: Promise.resolve().then(() => work(statements)),
      end: () => false,
      threadId: undefined,
    };
  }
  let connection: PoolConnection | undefined;
  let endedBy: Error | undefined;
  let abandon: (reason: Error) => void = () => {};
  const abandoned = new Promise<never>((_resolve, reject) => {
    abandon = reject;
  });
  abandoned.catch(() => {});
  const result = (async () => {
    const acquired = await getConnection(pool);
    if (endedBy !== undefined) {
      // Given up while waiting for it: unused, so it goes back to the pool as it is.
      acquired.release();
      throw endedBy;
    }
    connection = acquired;
    try {
      const statements: AuditStatements = {
        insert: (rows) => insertPrepared(acquired, rows),
        probe: () => query(acquired, 'select 1'),
        killQuery: (threadId) => query(acquired, `KILL QUERY ${Math.trunc(threadId)}`),
      };
      // A destroyed connection may never call back: `abandoned` settles the call instead.
      return await Promise.race([work(statements), abandoned]);
    } finally {
      if (endedBy === undefined) acquired.release();
    }
  })();
  return {
    result,
    end(reason) {
      if (endedBy !== undefined) return connection !== undefined;
      endedBy = reason;
      if (connection === undefined) return false;
      connection.destroy(); // out of the pool; no other command goes to it
      // mysql2 ends the socket gracefully, which a server that never answers never completes: close it now.
      (connection as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
      abandon(reason);
      return true;
    },
    get threadId() {
      return connection?.threadId ?? undefined;
    },
  };
}

function getConnection(pool: Pool): Promise<PoolConnection> {
  return new Promise((resolve, reject) => {
    pool.getConnection((err, connection) => (err ? reject(err) : resolve(connection)));
  });
}

function query(connection: PoolConnection, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    connection.query(text, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Whether an insert failed because of what a row holds, so the same row would fail again however
 * often it is sent: MySQL's data errors (with IGNORE most become warnings; these are what is left)
 * and SQLite's constraint, too-big and type-mismatch errors. Anything else (keygate's own timeout,
 * a lock wait, a deadlock, an interrupted query, a lost connection, a busy SQLite file, an error
 * with no code) says the database cannot take rows now, not that a row is bad: the rows are kept.
 */
export function isBadRowError(err: unknown): boolean {
  const e = err as { sqlState?: unknown; errno?: unknown; code?: unknown; errcode?: unknown } | null;
  if (typeof e?.sqlState === 'string' && typeof e.errno === 'number') return MYSQL_BAD_ROW.has(e.errno);
  if (e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number') {
    return SQLITE_BAD_ROW.has(e.errcode & 0xff);
  }
  return false;
}

/** MySQL / MariaDB error numbers (shared by both below 1900) that name a row's value as the problem. */
const MYSQL_BAD_ROW = new Set([
  1048, // ER_BAD_NULL_ERROR
  1153, // ER_NET_PACKET_TOO_LARGE: one row over max_allowed_packet
  1263, // ER_WARN_NULL_TO_NOTNULL
  1264, // ER_WARN_DATA_OUT_OF_RANGE
  1265, // WARN_DATA_TRUNCATED
  1292, // ER_TRUNCATED_WRONG_VALUE
  1300, // ER_INVALID_CHARACTER_STRING
  1366, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
  1367, // ER_ILLEGAL_VALUE_FOR_TYPE
  1406, // ER_DATA_TOO_LONG
  1411, // ER_WRONG_VALUE_FOR_TYPE
  1441, // ER_DATETIME_FUNCTION_OVERFLOW
  1452, // ER_NO_REFERENCED_ROW_2
  1690, // ER_DATA_OUT_OF_RANGE
]);

/** SQLite primary result codes (the low byte of an extended code) that name a row as the problem. */
const SQLITE_BAD_ROW = new Set([
  18, // SQLITE_TOOBIG
  19, // SQLITE_CONSTRAINT
  20, // SQLITE_MISMATCH
]);

/** The largest prepared insert, in rows (a power of two: chunks are powers of two). */
const PREPARED_CHUNK_ROWS = 256;

function parametersOf(rows: readonly NewAuditLogRow[], from: number, count: number): ExecuteValues[] {
  const parameters: ExecuteValues[] = new Array(count * COLUMNS.length);
  let i = 0;
  for (let r = from; r < from + count; r++) {
    const row = rows[r]!;
    for (const column of COLUMNS) parameters[i++] = row[column] ?? null;
  }
  return parameters;
}

/** A mysql2 pool (takes a connection for the statement) or one connection. */
interface Executes {
  execute(sql: string, values: ExecuteValues[], callback: (err: Error | null) => void): unknown;
}

function execute(target: Executes, text: string, parameters: ExecuteValues[]): Promise<void> {
  return new Promise((resolve, reject) => {
    target.execute(text, parameters, (err) => (err ? reject(err) : resolve()));
  });
}

const statements = new Map<string, string>();

function insertStatement(dialect: 's' | 'm', rowCount: number): string {
  const key = `${dialect}${rowCount}`;
  let text = statements.get(key);
  if (text === undefined) {
    const row = `(${COLUMNS.map(() => '?').join(', ')})`;
    text = `insert ${dialect === 's' ? 'or ignore' : 'ignore'} into audit_log (${COLUMNS.join(', ')}) values ${Array(rowCount).fill(row).join(', ')}`;
    if (statements.size > 2000) statements.clear();
    statements.set(key, text);
  }
  return text;
}

/** Every audit_log column and the JSON type it must have; `satisfies` fails when the table changes. */
const COLUMN_TYPES = {
  request_id: 'string',
  tenant_id: 'string?',
  key_id: 'string?',
  secret_version: 'number?',
  client_ip: 'string?',
  method: 'string',
  path: 'string',
  query: 'string',
  request_headers: 'string',
  request_body: 'string',
  request_body_truncated: 'number',
  response_status: 'number',
  response_headers: 'string',
  response_body: 'string',
  response_body_truncated: 'number',
  latency_ms: 'number',
  outcome: 'string',
  created_at: 'string',
} as const satisfies Record<keyof AuditLogTable, 'string' | 'string?' | 'number' | 'number?'>;
const COLUMNS = Object.keys(COLUMN_TYPES) as (keyof AuditLogTable)[];

/**
 * Copies exactly the audit_log columns, in a fixed order, with absent nullable columns as null:
 * the writer's own copy of a caller's row (so a stray property cannot break the insert).
 */
export function toAuditRow(row: NewAuditLogRow): NewAuditLogRow {
  const copy: Record<string, unknown> = {};
  for (const column of COLUMNS) copy[column] = row[column] ?? null;
  return copy as unknown as NewAuditLogRow;
}

/** Parses one spool line; undefined when it is not an audit row with every column of the right type. */
export function parseSpoolLine(line: string): NewAuditLogRow | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const row = value as Record<string, unknown>;
  for (const column of COLUMNS) {
    const type = COLUMN_TYPES[column];
    const v = row[column];
    if (type.endsWith('?') && (v === null || v === undefined)) continue;
    if (type.startsWith('string') ? typeof v !== 'string' : !Number.isFinite(v)) return undefined;
  }
  return toAuditRow(row as unknown as NewAuditLogRow);
}

/** Rough size of a row on the wire, to keep one statement well under MySQL's max_allowed_packet. */
export function estimateRowBytes(row: NewAuditLogRow): number {
  let bytes = 0;
  for (const value of Object.values(row)) {
    bytes += typeof value === 'string' ? Buffer.byteLength(value) : 8;
  }
  return bytes;
}
