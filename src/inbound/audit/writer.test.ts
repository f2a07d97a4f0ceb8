/** The write path, replay and idempotence on both dialects (no faults; see writer.mysql.test.ts). */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type KyselyPlugin, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../../../test/helpers/db.ts';
import type { Db } from '../../storage/db.ts';
import type { NewAuditLogRow } from '../../storage/schema.ts';
import { ACTIVE_SPOOL_FILE, createAuditWriter, REJECTED_FILE } from './index.ts';
import { insertAuditRows } from './insert.ts';
import { LEASE_FILE } from './spool.ts';
import {
  BODY_MARKER,
  readJsonLines,
  recordingLogger,
  sampleRow,
  spoolFiles,
  spoolLine,
  waitFor,
} from './test-fixtures.ts';

/** MariaDB's count of prepared-statement executions, server-wide (0 on SQLite). */
async function preparedExecutions(db: Db, dialect: string): Promise<number> {
  if (dialect !== 'mysql') return 0;
  const { rows } = await sql<{ Value: string }>`show global status like 'Com_stmt_execute'`.execute(db);
  return Number(rows[0]?.Value);
}

describe.each(DIALECTS)('audit writer on %s', (dialect) => {
  let t: TestDatabase;
  let spoolDir: string;
  let prefix = 0;
  const ids = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  const storedIds = async (tag: string) =>
    (
      await t.db
        .selectFrom('audit_log')
        .select('request_id')
        .where('request_id', 'like', `${tag}-%`)
        .execute()
    )
      .map((r) => r.request_id)
      .sort();

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await t.drop();
  });
  beforeEach(() => {
    spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
    prefix += 1;
  });
  afterEach(() => {
    rmSync(spoolDir, { recursive: true, force: true });
  });
  const tag = (name: string) => `${dialect}${prefix}${name}`;

  it('compiles to an insert that ignores known request ids', () => {
    const compiled = t.db.insertInto('audit_log').orIgnore().values(sampleRow('x')).compile().sql;
    expect(compiled).toMatch(
      dialect === 'mysql' ? /^insert ignore into `audit_log`/ : /^insert or ignore into "audit_log"/,
    );
  });

  it('writes rows in batches off the request path, byte for byte', async () => {
    const writer = createAuditWriter({ db: t.db, spoolDir, batchSize: 50, logger: recordingLogger() });
    const rows = ids(500, tag('w')).map((id) => sampleRow(id));
    for (const row of rows) writer.write(row);
    // Nothing awaited yet: write() only queued.
    expect(writer.stats().queued).toBe(500);
    await writer.flush();
    expect(writer.stats()).toMatchObject({ queued: 0, written: 500, spooled: 0, replayed: 0 });
    expect(await storedIds(tag('w'))).toEqual(rows.map((r) => r.request_id).sort());
    const back = await t.db
      .selectFrom('audit_log')
      .selectAll()
      .where('request_id', '=', rows[7]!.request_id)
      .executeTakeFirstOrThrow();
    expect(back).toEqual(rows[7]);
    await writer.close();
  });

  it('writes a partial batch once flushIntervalMs has passed', async () => {
    const writer = createAuditWriter({ db: t.db, spoolDir, flushIntervalMs: 20, logger: recordingLogger() });
    writer.write(sampleRow(`${tag('timer')}-0`));
    await waitFor(async () => (await storedIds(tag('timer'))).length === 1, 2000, 'the timed flush');
    await writer.close();
  });

  it('sends rows that arrive during an insert in the next full batch, not a small one of their own', async () => {
    const inserts: number[] = [];
    const writer = createAuditWriter({
      db: t.db.withPlugin(recordInsertSizes(inserts)),
      spoolDir,
      batchSize: 50,
      flushIntervalMs: 60_000,
      logger: recordingLogger(),
    });
    const rows = ids(130, tag('full')).map((id) => sampleRow(id));
    for (const row of rows.slice(0, 50)) writer.write(row); // a full batch: its insert starts
    for (const row of rows.slice(50, 80)) writer.write(row); // 30 more while it runs
    await waitFor(() => writer.stats().written === 50, 5000, 'the first batch');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(writer.stats()).toMatchObject({ written: 50, queued: 30 });
    for (const row of rows.slice(80, 130)) writer.write(row); // 80 queued: one more full batch
    await waitFor(() => writer.stats().written === 100, 5000, 'the second batch');
    expect(writer.stats().queued).toBe(30);
    await writer.close(); // and close() sends the rest
    expect(inserts).toEqual([50, 50, 30]);
    expect(await storedIds(tag('full'))).toEqual(rows.map((r) => r.request_id).sort());
  });

  it('stores a request id once, however often it is written', async () => {
    const writer = createAuditWriter({ db: t.db, spoolDir, batchSize: 10, logger: recordingLogger() });
    for (let round = 0; round < 3; round += 1)
      for (const id of ids(25, tag('dup'))) writer.write(sampleRow(id));
    await writer.close();
    expect(await storedIds(tag('dup'))).toEqual(ids(25, tag('dup')).sort());
  });

  it('flushes everything on close, and spools a write that comes after it', async () => {
    const logger = recordingLogger();
    const writer = createAuditWriter({
      db: t.db,
      spoolDir,
      batchSize: 1000,
      flushIntervalMs: 60_000,
      logger,
    });
    for (const id of ids(150, tag('close'))) writer.write(sampleRow(id));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(writer.stats()).toMatchObject({ queued: 150, written: 0 });
    await writer.close();
    expect(writer.stats()).toMatchObject({ queued: 0, written: 150 });
    expect((await storedIds(tag('close'))).length).toBe(150);
    // The lease stays until the process exits: no other process may take the directory while
    // late rows can still be appended to its active file.
    expect(JSON.parse(readFileSync(path.join(spoolDir, LEASE_FILE), 'utf8'))).toMatchObject({
      pid: process.pid,
    });

    writer.write(sampleRow(`${tag('close')}-late`));
    expect(writer.stats().spooled).toBe(1);
    expect(statSync(spoolDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(spoolDir, ACTIVE_SPOOL_FILE)).mode & 0o777).toBe(0o600);
    expect(readJsonLines(path.join(spoolDir, ACTIVE_SPOOL_FILE))).toEqual([
      sampleRow(`${tag('close')}-late`, { created_at: expect.any(String) }),
    ]);

    const next = createAuditWriter({ db: t.db, spoolDir, logger });
    await waitFor(() => next.stats().replayed === 1, 5000, 'the late row to be replayed');
    expect((await storedIds(tag('close'))).length).toBe(151);
    await next.close();
    expect(logger.text()).not.toContain(BODY_MARKER);
  });

  it('stops replaying and sealing once another process took the spool directory over', async () => {
    const logger = recordingLogger();
    // maxQueue 1: every row is spooled at once, so the replay loop has work.
    const writer = createAuditWriter({
      db: t.db,
      spoolDir,
      batchSize: 1,
      maxQueue: 1,
      leaseRefreshMs: 20,
      replayIntervalMs: 20,
      logger,
    });
    try {
      const lease = path.join(spoolDir, LEASE_FILE);
      const other = {
        host: 'other-host',
        pid: 7,
        token: 'other',
        refreshMs: 5000,
        since: '2026-01-01T00:00:00Z',
      };
      writeFileSync(lease, `${JSON.stringify(other)}\n`);
      await waitFor(() => logger.text().includes('taken over by another process'), 5000, 'the lost lease');
      expect(logger.records.find((r) => r.msg.includes('taken over'))?.level).toBe('error');
      // The new holder's files: this writer must neither insert nor remove nor seal them.
      const sealed = path.join(spoolDir, 'audit-spool.1700000000000-000001.replay.jsonl');
      writeFileSync(sealed, spoolLine(sampleRow(`${tag('lost')}-0`)));
      writeFileSync(path.join(spoolDir, ACTIVE_SPOOL_FILE), spoolLine(sampleRow(`${tag('lost')}-1`)));
      writer.write(sampleRow(`${tag('lost')}-2`));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(writer.stats().spooled).toBe(1);
      expect(existsSync(sealed)).toBe(true);
      expect(readJsonLines(path.join(spoolDir, ACTIVE_SPOOL_FILE))).toEqual([
        sampleRow(`${tag('lost')}-1`, { created_at: expect.any(String) }),
      ]);
      expect(await storedIds(tag('lost'))).toEqual([]);
      // Its own row went to a sealed file of its own, for the new holder to replay.
      const own = spoolFiles(spoolDir).filter((f) => f !== path.basename(sealed) && f !== ACTIVE_SPOOL_FILE);
      expect(own.flatMap((f) => readJsonLines(path.join(spoolDir, f)))).toEqual([
        sampleRow(`${tag('lost')}-2`, { created_at: expect.any(String) }),
      ]);
    } finally {
      await writer.close();
    }
  });

  it('inserts any number of rows exactly once, every value byte for byte', async () => {
    // 203 rows are 128 + 64 + 8 + 2 + 1 on MySQL's prepared-statement chunks, one statement on SQLite.
    const odd = 'quote \' double " back \\ nul \u0000 tab \t line \n %_ ? :x $1 héllo 😀';
    const rows = ids(203, tag('chunks')).map((id, i) =>
      sampleRow(id, {
        tenant_id: i % 2 === 0 ? null : 'ten_audit',
        secret_version: i % 3 === 0 ? null : i,
        query: odd,
        request_body: `${odd} ${i}`,
        response_status: 200 + (i % 300),
        latency_ms: i * 1000,
      }),
    );
    const executedBefore = await preparedExecutions(t.db, dialect);
    await insertAuditRows(t.db, rows);
    // MySQL takes the prepared-statement path: one execution per chunk.
    if (dialect === 'mysql')
      expect((await preparedExecutions(t.db, dialect)) - executedBefore).toBeGreaterThanOrEqual(5);
    // Sent again with 13 more (a batch written twice after a timeout): the known ones are skipped.
    const more = ids(216, tag('chunks'))
      .slice(203)
      .map((id) => sampleRow(id));
    await insertAuditRows(t.db, [...rows, ...more]);
    const stored = await t.db
      .selectFrom('audit_log')
      .selectAll()
      .where('request_id', 'like', `${tag('chunks')}-%`)
      .execute();
    expect(stored).toHaveLength(216);
    const byId = new Map(stored.map((row) => [row.request_id, row]));
    for (const row of [...rows, ...more]) {
      expect(byId.get(row.request_id)).toEqual({ ...row, created_at: expect.any(String) });
    }
  });

  it('replays a spool left by an earlier process at start-up, oldest file first, without duplicates', async () => {
    const all = ids(300, tag('boot')).map((id) => sampleRow(id));
    // Rows 0..99 reached the database before the crash; the spool holds 0..299 again.
    await insertAuditRows(t.db, all.slice(0, 100));
    writeFileSync(
      path.join(spoolDir, 'audit-spool.1700000000000-000002.replay.jsonl'),
      all.slice(0, 150).map(spoolLine).join(''),
    );
    writeFileSync(path.join(spoolDir, ACTIVE_SPOOL_FILE), all.slice(150).map(spoolLine).join(''));
    const logger = recordingLogger();
    const writer = createAuditWriter({ db: t.db, spoolDir, batchSize: 40, logger });
    await waitFor(() => spoolFiles(spoolDir).length === 0, 10_000, 'the spool to drain');
    expect(writer.stats()).toMatchObject({ replayed: 300, rejected: 0 });
    expect(await storedIds(tag('boot'))).toEqual(all.map((r) => r.request_id).sort());
    expect(logger.records.filter((r) => r.level === 'error')).toEqual([]);
    await writer.close();
  });

  it('moves torn and corrupt lines to the rejected file and replays the rest', async () => {
    const good = ids(6, tag('bad')).map((id) => sampleRow(id));
    const wrongType = { ...sampleRow(`${tag('bad')}-wrongtype`), method: { not: 'a string' } };
    const lines = [
      spoolLine(good[0]!),
      spoolLine(good[1]!),
      'this is not json\n',
      `${JSON.stringify(wrongType)}\n`,
      spoolLine(good[2]!),
      '["an array"]\n',
      spoolLine(good[3]!),
      spoolLine(good[4]!),
      spoolLine(good[5]!),
      '{"request_id":"torn-by-a-cr', // a crash in the middle of an append
    ];
    writeFileSync(path.join(spoolDir, ACTIVE_SPOOL_FILE), lines.join(''));
    const logger = recordingLogger();
    const writer = createAuditWriter({ db: t.db, spoolDir, batchSize: 3, logger });
    await waitFor(() => spoolFiles(spoolDir).length === 0, 10_000, 'the spool to drain');
    expect(await storedIds(tag('bad'))).toEqual(good.map((r) => r.request_id).sort());
    const rejected = readFileSync(path.join(spoolDir, REJECTED_FILE), 'utf8').trim().split('\n');
    expect(rejected).toEqual([lines[2]!.trim(), lines[3]!.trim(), lines[5]!.trim(), lines[9]]);
    expect(writer.stats()).toMatchObject({ replayed: 6, rejected: 4 });
    expect(logger.text()).not.toContain(BODY_MARKER);
    await writer.close();
  });

  it('sets aside a row the database refuses for its content, so it cannot block the spool', async () => {
    const rows = ids(9, tag('refused')).map((id) => sampleRow(id));
    rows[4] = sampleRow(`${tag('refused')}-refuse-me`);
    writeFileSync(path.join(spoolDir, ACTIVE_SPOOL_FILE), rows.map(spoolLine).join(''));
    const logger = recordingLogger();
    const writer = createAuditWriter({
      db: t.db.withPlugin(refuseStatementsContaining('refuse-me', dataError(dialect))),
      spoolDir,
      batchSize: 4,
      logger,
    });
    await waitFor(() => spoolFiles(spoolDir).length === 0, 10_000, 'the spool to drain');
    expect(await storedIds(tag('refused'))).toEqual(
      rows
        .filter((_, i) => i !== 4)
        .map((r) => r.request_id)
        .sort(),
    );
    expect(readJsonLines(path.join(spoolDir, REJECTED_FILE))).toEqual([rows[4]]);
    expect(writer.stats()).toMatchObject({ replayed: 8, rejected: 1 });
    expect(logger.records.find((r) => r.level === 'error')?.msg).toBe(
      'audit rows moved to the rejected file',
    );
    await writer.close();
  });

  it('sets aside a bad row written directly, and keeps writing the others without an outage', async () => {
    const rows = ids(9, tag('direct')).map((id) => sampleRow(id));
    rows[2] = sampleRow(`${tag('direct')}-refuse-me`);
    const logger = recordingLogger();
    const writer = createAuditWriter({
      db: t.db.withPlugin(refuseStatementsContaining('refuse-me', dataError(dialect))),
      spoolDir,
      batchSize: 3,
      replayIntervalMs: 20,
      logger,
    });
    for (const row of rows) writer.write(row);
    await writer.flush();
    await waitFor(() => writer.stats().rejected === 1, 5000, 'the bad row to be set aside');
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5000, 'the spool to drain');
    expect(await storedIds(tag('direct'))).toEqual(
      rows
        .filter((_, i) => i !== 2)
        .map((r) => r.request_id)
        .sort(),
    );
    expect(readJsonLines(path.join(spoolDir, REJECTED_FILE))).toEqual([rows[2]]);
    // Only the bad row's batch took the detour; the database was never taken for down.
    expect(writer.stats()).toMatchObject({ written: 6, spooled: 3, replayed: 2, rejected: 1 });
    expect(logger.records.map((r) => r.msg)).not.toContain(
      'audit database write failed; spooling rows until it is back',
    );
    await writer.close();
  });

  it('keeps rows in the spool, never in the rejected file, while inserts fail for any other reason', async () => {
    const rows = ids(20, tag('busy')).map((id) => sampleRow(id));
    writeFileSync(path.join(spoolDir, ACTIVE_SPOOL_FILE), rows.map(spoolLine).join(''));
    // Inserts fail as a locked table does (a lock wait timeout, a busy file), while `select 1` answers.
    let failing = true;
    let failed = 0;
    const logger = recordingLogger();
    const writer = createAuditWriter({
      db: t.db.withPlugin(
        failInsertsWhile(
          () => failing,
          () => {
            failed += 1;
            return busyError(dialect)();
          },
        ),
      ),
      spoolDir,
      batchSize: 4,
      replayIntervalMs: 20,
      logger,
    });
    await waitFor(() => failed >= 10, 5000, 'ten failed inserts');
    expect(writer.stats()).toMatchObject({ replayed: 0, rejected: 0 });
    expect(logger.records.map((r) => r.msg)).toContain(
      'audit database write failed; spooling rows until it is back',
    );
    failing = false;
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5000, 'the spool to drain');
    expect(await storedIds(tag('busy'))).toEqual(rows.map((r) => r.request_id).sort());
    expect(writer.stats()).toMatchObject({ replayed: 20, rejected: 0 });
    expect(existsSync(path.join(spoolDir, REJECTED_FILE))).toBe(false);
    await writer.close();
  });

  it('never throws from write(), even for a row that is not one', async () => {
    const logger = recordingLogger();
    const writer = createAuditWriter({ db: t.db, spoolDir, logger });
    expect(() => writer.write(null as unknown as NewAuditLogRow)).not.toThrow();
    expect(logger.records.map((r) => r.msg)).toEqual(['audit row could not be queued']);
    await writer.close();
  });
});

/** A database that answers, but refuses any statement mentioning the marker with `error()`. */
function refuseStatementsContaining(marker: string, error: () => Error): KyselyPlugin {
  return {
    transformQuery(args) {
      if (JSON.stringify(args.node).includes(marker)) throw error();
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
}

/** A database that answers `select 1`, but fails every insert with `error()` while `failing()`. */
function failInsertsWhile(failing: () => boolean, error: () => Error): KyselyPlugin {
  return {
    transformQuery(args) {
      if (args.node.kind === 'InsertQueryNode' && failing()) throw error();
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
}

/** The error each driver gives for a value that cannot be stored: the row itself is bad. */
function dataError(dialect: string): () => Error {
  return dialect === 'mysql'
    ? () =>
        Object.assign(new Error("Data too long for column 'request_body' at row 1"), {
          code: 'ER_DATA_TOO_LONG',
          errno: 1406,
          sqlState: '22001',
        })
    : () =>
        Object.assign(new Error('string or blob too big'), {
          code: 'ERR_SQLITE_ERROR',
          errcode: 18,
          errstr: 'string or blob too big',
        });
}

/** The error each driver gives while another session holds the table: the database is busy. */
function busyError(dialect: string): () => Error {
  return dialect === 'mysql'
    ? () =>
        Object.assign(new Error('Lock wait timeout exceeded; try restarting transaction'), {
          code: 'ER_LOCK_WAIT_TIMEOUT',
          errno: 1205,
          sqlState: 'HY000',
        })
    : () =>
        Object.assign(new Error('database is locked'), {
          code: 'ERR_SQLITE_ERROR',
          errcode: 5,
          errstr: 'database is locked',
        });
}

describe('createAuditWriter options', () => {
  it('rejects bad options when it is called', async () => {
    const t = await createTestDatabase('sqlite');
    try {
      const spoolDir = path.join(t.dataDir, 'spool');
      expect(() => createAuditWriter({ db: t.db, spoolDir, batchSize: 0 })).toThrow(/batchSize/);
      expect(() => createAuditWriter({ db: t.db, spoolDir, batchSize: 5000 })).toThrow(/batchSize/);
      expect(() => createAuditWriter({ db: t.db, spoolDir, batchSize: 100, maxQueue: 10 })).toThrow(
        /maxQueue/,
      );
      expect(() => createAuditWriter({ db: t.db, spoolDir, writeTimeoutMs: Number.NaN })).toThrow(
        /writeTimeoutMs/,
      );
    } finally {
      await t.drop();
    }
  });
});

/** Records the row count of every audit insert (a plugin sends them through the query builder). */
function recordInsertSizes(sizes: number[]): KyselyPlugin {
  return {
    transformQuery(args) {
      const node = args.node as { kind: string; values?: { values?: unknown[] } };
      if (node.kind === 'InsertQueryNode') sizes.push(node.values?.values?.length ?? 0);
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
}
