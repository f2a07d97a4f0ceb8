/**
 * The audit writer against real MariaDB faults. The writer's own Db goes through a TCP proxy the
 * test cuts (connections refused) or hangs (accepted, never answered); the shared server is never
 * touched. Assertions read through the direct connection of the test database.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KyselyPlugin } from 'kysely';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2';
import { createConnection } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db.ts';
import { startTcpProxy, type TcpProxy } from '../../../test/helpers/tcp-proxy.ts';
import { createDatabase, type Db, mysqlPoolOf } from '../../storage/db.ts';
import { ACTIVE_SPOOL_FILE, type AuditWriter, createAuditWriter, REJECTED_FILE } from './index.ts';
import { LEASE_FILE } from './spool.ts';
import {
  BODY_MARKER,
  readJsonLines,
  recordingLogger,
  sampleRow,
  sleep,
  spoolFiles,
  spoolLine,
  waitFor,
} from './test-fixtures.ts';

/** How many connections `pool` holds: counted as it opens them and as they end or fail. */
function poolConnections(pool: Pool): { open(): number } {
  let open = 0;
  pool.on('connection', (connection: PoolConnection) => {
    open += 1;
    let gone = false;
    const drop = () => {
      if (!gone) open -= 1;
      gone = true;
    };
    connection.once('end', drop);
    connection.once('error', drop);
  });
  return { open: () => open };
}

/** Counts the database calls the writer starts through `pool`: each takes a connection of its own. */
function countCalls(pool: Pool): { count: number } {
  const counter = { count: 0 };
  const getConnection = pool.getConnection.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { getConnection: (...args: unknown[]) => unknown }).getConnection = (...args) => {
    counter.count += 1;
    return getConnection(...args);
  };
  return counter;
}

describe('audit writer under MariaDB faults', () => {
  let t: TestDatabase;
  let proxy: TcpProxy;
  let spoolDir: string;
  let writerDbs: Db[] = [];
  let writers: AuditWriter[] = [];
  let run = 0;

  beforeAll(async () => {
    t = await createTestDatabase('mysql');
  });
  afterAll(async () => {
    await t.drop();
  });
  beforeEach(async () => {
    const target = new URL(t.databaseUrl!);
    // A fresh proxy per test: hang() leaves sockets behind that must not leak into the next test.
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 3306) });
    spoolDir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-'));
    run += 1;
  });
  afterEach(async () => {
    proxy.restore();
    for (const writer of writers) await writer.close();
    await proxy.close();
    for (const db of writerDbs) await db.destroy().catch(() => {});
    writers = [];
    writerDbs = [];
    rmSync(spoolDir, { recursive: true, force: true });
  });

  function proxiedUrl(): string {
    const url = new URL(t.databaseUrl!);
    url.host = `127.0.0.1:${proxy.port}`;
    return url.toString();
  }
  function proxiedDb(): Db {
    const { db } = createDatabase({ databaseUrl: proxiedUrl(), dataDir: spoolDir });
    writerDbs.push(db);
    return db;
  }
  function startWriter(options: Partial<Parameters<typeof createAuditWriter>[0]> = {}): AuditWriter {
    const writer = createAuditWriter({
      db: options.db ?? proxiedDb(),
      spoolDir,
      replayIntervalMs: 100,
      writeTimeoutMs: 2000,
      ...options,
    });
    writers.push(writer);
    return writer;
  }
  const ids = (n: number, name: string) => Array.from({ length: n }, (_, i) => `m${run}${name}-${i}`);
  async function storedIds(name: string): Promise<string[]> {
    const rows = await t.db
      .selectFrom('audit_log')
      .select('request_id')
      .where('request_id', 'like', `m${run}${name}-%`)
      .execute();
    return rows.map((r) => r.request_id).sort();
  }
  const sorted = (values: string[]) => [...values].sort();

  it('keeps exactly one row per request through an outage in the middle of 1,000 writes', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ logger });
    const all = ids(1000, 'cut');
    for (const [i, id] of all.entries()) {
      if (i === 300) proxy.cut();
      if (i === 700) proxy.restore();
      writer.write(sampleRow(id));
      if (i % 10 === 9) await sleep(3);
    }
    await writer.flush();
    await waitFor(async () => (await storedIds('cut')).length === 1000, 20_000, '1,000 rows in MySQL');
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be replayed and removed');

    expect(await storedIds('cut')).toEqual(sorted(all));
    const stats = writer.stats();
    expect(stats.spooled).toBeGreaterThan(0);
    expect(stats.written + stats.spooled).toBe(1000);
    expect(stats.replayed).toBe(stats.spooled);
    expect(stats).toMatchObject({ queued: 0, rejected: 0, dropped: 0 });
    const messages = logger.records.map((r) => r.msg);
    expect(messages).toContain('audit database write failed; spooling rows until it is back');
    expect(messages).toContain('audit database reachable again; spool replayed');
    expect(logger.text()).not.toContain(BODY_MARKER);
  }, 40_000);

  it('keeps spooled rows across close() and replays them in the next writer', async () => {
    proxy.cut();
    const first = startWriter();
    const rows = ids(100, 'restart').map((id) => sampleRow(id));
    for (const row of rows) first.write(row);
    await first.close();
    expect(first.stats()).toMatchObject({ queued: 0, written: 0, spooled: 100 });
    expect(readJsonLines(path.join(spoolDir, ACTIVE_SPOOL_FILE))).toEqual(rows);
    expect(await storedIds('restart')).toEqual([]);

    proxy.restore();
    const second = startWriter();
    await waitFor(() => second.stats().replayed === 100, 10_000, 'the restarted writer to replay');
    expect(await storedIds('restart')).toEqual(sorted(rows.map((r) => r.request_id)));
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the replayed spool to be removed');
  }, 30_000);

  it('replays what a writer killed by SIGKILL had spooled', async () => {
    proxy.cut();
    const fixture = fileURLToPath(new URL('./crash-writer.fixture.ts', import.meta.url));
    const child = spawn(process.execPath, [fixture, proxiedUrl(), spoolDir, `m${run}crash`, '250'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, sig) => resolve(sig)),
    );
    expect(signal).toBe('SIGKILL');
    expect(JSON.parse(out)).toMatchObject({ spooled: 250, queued: 0 });

    proxy.restore();
    const writer = startWriter();
    // Counted once the insert returned, which is after MySQL shows the rows: wait on the count.
    await waitFor(() => writer.stats().replayed === 250, 10_000, 'the crashed spool to be replayed');
    expect((await storedIds('crash')).length).toBe(250);
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the replayed spool to be removed');
  }, 30_000);

  it('spools after writeTimeoutMs when the database accepts but never answers, and replays once it does', async () => {
    const logger = recordingLogger();
    const db = proxiedDb();
    const pool = mysqlPoolOf(db)!;
    const connections = poolConnections(pool);
    const calls = countCalls(pool);
    const writer = startWriter({ db, writeTimeoutMs: 300, logger });
    writer.write(sampleRow(ids(1, 'warm')[0]!));
    await writer.flush();
    expect(writer.stats().written).toBe(1);
    expect(connections.open()).toBeGreaterThan(0);

    proxy.hang();
    // Wait for the pool to drop its cut connection, so the next insert opens one that hangs (rather
    // than failing at once on the dead one).
    await waitFor(() => connections.open() === 0, 10_000, 'the pool to drop its connection');
    const rows = ids(50, 'hang').map((id) => sampleRow(id));
    for (const row of rows) writer.write(row);
    const callsBefore = calls.count;
    // Resolves only because the writer stops waiting: the database never answers.
    await writer.flush();
    expect(writer.stats()).toMatchObject({ queued: 0, spooled: 50, written: 1 });
    expect(readJsonLines(path.join(spoolDir, ACTIVE_SPOOL_FILE))).toHaveLength(50);
    // One insert was tried and given up after writeTimeoutMs, not refused.
    expect(calls.count).toBe(callsBefore + 1);
    const down = logger.records.find(
      (r) => r.msg === 'audit database write failed; spooling rows until it is back',
    );
    expect(JSON.stringify(down?.obj)).toContain('longer than 300 ms');

    // Still waiting for its connection (it cannot be ended before it has one): more rows go
    // straight to the spool without trying the database again.
    writer.write(sampleRow(`m${run}hang-late`));
    await writer.flush();
    expect(writer.stats().spooled).toBe(51);
    expect(calls.count).toBe(callsBefore + 1);

    proxy.restore();
    await waitFor(
      async () => (await storedIds('hang')).length === 51,
      25_000,
      'the hung rows to be replayed',
    );
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be removed');
    expect(logger.records.some((r) => JSON.stringify(r.obj).includes('longer than 300 ms'))).toBe(true);
  }, 40_000);

  it('holds at most one pool connection while MariaDB stalls, and stores every row once it answers', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ writeTimeoutMs: 200, replayIntervalMs: 20, logger });
    const warm = `m${run}stall-warm`;
    writer.write(sampleRow(warm));
    await writer.flush();
    expect(writer.stats().written).toBe(1);
    expect(proxy.openConnections()).toBe(1);

    // The connection stays up and nothing answers: every call the writer starts from here on hangs
    // and keeps its pool connection. Rows keep coming for many timeouts and replay rounds.
    proxy.stall();
    const all = ids(150, 'stall');
    let most = 0;
    for (const [i, id] of all.entries()) {
      writer.write(sampleRow(id));
      if (i % 5 === 4) await sleep(50);
      most = Math.max(most, proxy.openConnections());
    }
    await writer.flush();
    most = Math.max(most, proxy.openConnections());
    expect(most).toBe(1);
    expect(writer.stats()).toMatchObject({ queued: 0, dropped: 0 });
    expect(writer.stats().spooled).toBeGreaterThan(0);

    // The timed-out calls were ended with their connections; once MariaDB answers, the probe and
    // the replay go on over one fresh connection.
    proxy.restore();
    await waitFor(
      async () => (await storedIds('stall')).length === all.length + 1,
      20_000,
      'every stalled row in MySQL',
    );
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be replayed and removed');
    expect(await storedIds('stall')).toEqual(sorted([warm, ...all]));
    expect(proxy.openConnections()).toBe(1);
    expect(writer.stats()).toMatchObject({ queued: 0, rejected: 0, dropped: 0 });
  }, 40_000);

  it('ends a call on a connection that never answers and goes on over a fresh one, storing every row once', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ writeTimeoutMs: 300, replayIntervalMs: 100, logger });
    const warm = `m${run}frozen-warm`;
    writer.write(sampleRow(warm));
    await writer.flush();
    expect(writer.stats().written).toBe(1);
    expect(proxy.openConnections()).toBe(1);

    // The pool's one connection goes silent for good (MariaDB's host died, or a firewall dropped
    // the connection's state) while MariaDB takes new connections as usual. Nothing is restored:
    // only a writer that gives the dead connection up stores these rows.
    proxy.freeze();
    const all = ids(100, 'frozen');
    let most = 0;
    for (const [i, id] of all.entries()) {
      writer.write(sampleRow(id));
      if (i % 10 === 9) await sleep(30);
      most = Math.max(most, proxy.openConnections());
    }
    await writer.flush();
    await waitFor(
      async () => (await storedIds('frozen')).length === all.length + 1,
      20_000,
      'every row in MySQL over a fresh connection',
    );
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be replayed and removed');
    expect(await storedIds('frozen')).toEqual(sorted([warm, ...all]));
    const stats = writer.stats();
    expect(stats.written + stats.replayed).toBe(all.length + 1);
    expect(stats).toMatchObject({ queued: 0, rejected: 0, dropped: 0 });
    // The dead connection was closed by the writer, not left to TCP: one connection, the fresh one.
    most = Math.max(most, proxy.openConnections());
    expect(most).toBe(1);
    expect(proxy.openConnections()).toBe(1);
    expect(logger.records.some((r) => JSON.stringify(r.obj).includes('longer than 300 ms'))).toBe(true);
  }, 40_000);

  it('reports a full spool once its files reach spoolMaxBytes, and no longer once the replay drained it', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ spoolMaxBytes: 4096, logger });
    const onDisk = () =>
      spoolFiles(spoolDir).reduce((total, name) => total + statSync(path.join(spoolDir, name)).size, 0);
    proxy.cut();
    expect(writer.auditBlocked()).toBe(false);
    const first = ids(20, 'full');
    for (const id of first) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.auditBlocked()).toBe(true);
    expect(writer.stats().spoolBytes).toBeGreaterThanOrEqual(4096);
    expect(writer.stats().spoolBytes).toBe(onDisk());

    // Rows that still come (those of the calls refused meanwhile) are spooled past the limit, not
    // dropped; the refusal is logged at error, once however many rows a second brings.
    const more = Array.from({ length: 30 }, (_, i) => `m${run}full-more-${i}`);
    for (const id of more) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.stats()).toMatchObject({ spooled: 50, dropped: 0, spoolBytes: onDisk() });
    const full = logger.records.filter((r) => r.msg.startsWith('audit spool at its size limit'));
    expect(full.map((r) => r.level)).toEqual(['error']);
    expect(full[0]!.obj).toMatchObject({ spoolMaxBytes: 4096 });

    proxy.restore();
    await waitFor(() => !writer.auditBlocked(), 15_000, 'the replay to bring the spool below its limit');
    await waitFor(async () => (await storedIds('full')).length === 50, 15_000, 'every spooled row in MySQL');
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be removed');
    expect(await storedIds('full')).toEqual(sorted([...first, ...more]));
    expect(writer.stats().spoolBytes).toBe(0);
    expect(logger.records.map((r) => r.msg)).toContain(
      'audit spool below its size limit again: inbound calls are forwarded again',
    );
    expect(logger.text()).not.toContain(BODY_MARKER);
  }, 40_000);

  it('keeps rows of refused calls up to twice spoolMaxBytes, then counts them as shed; rows of forwarded calls are always kept', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ spoolMaxBytes: 4096, logger });
    proxy.cut();
    // Forwarded calls until the limit: from here on every call is refused.
    const forwarded: string[] = [];
    while (!writer.auditBlocked()) {
      const id = `m${run}shed-fwd-${forwarded.length}`;
      forwarded.push(id);
      writer.write(sampleRow(id));
      await writer.flush();
    }
    // Rows of refused calls are kept until the spool holds twice the limit...
    const refusedKept: string[] = [];
    while (writer.stats().spoolBytes < 2 * 4096) {
      const id = `m${run}shed-ref-${refusedKept.length}`;
      refusedKept.push(id);
      writer.write(sampleRow(id), { forwarded: false });
      await writer.flush();
    }
    expect(refusedKept.length).toBeGreaterThan(0);
    expect(writer.stats().shed).toBe(0);
    // ...and past it they are counted, not kept: the spool stops growing however often partners retry.
    const bytes = writer.stats().spoolBytes;
    const refusedShed = Array.from({ length: 40 }, (_, i) => `m${run}shed-gone-${i}`);
    for (const id of refusedShed) writer.write(sampleRow(id), { forwarded: false });
    await writer.flush();
    expect(writer.stats()).toMatchObject({ shed: 40, dropped: 0, spoolBytes: bytes });
    const shedLogs = logger.records.filter((r) => r.msg.startsWith('audit rows of refused calls not kept'));
    expect(shedLogs.map((r) => r.level)).toEqual(['error']);
    expect(shedLogs[0]!.obj).toMatchObject({ shed: 1, spoolMaxBytes: 4096 });
    // The row of a call forwarded just before the limit (its answer came later) is kept.
    const late = `m${run}shed-late`;
    writer.write(sampleRow(late));
    await writer.flush();
    expect(writer.stats().spoolBytes).toBeGreaterThan(bytes);

    proxy.restore();
    const kept = [...forwarded, ...refusedKept, late];
    await waitFor(
      async () => (await storedIds('shed')).length === kept.length,
      15_000,
      'the kept rows in MySQL',
    );
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be removed');
    expect(await storedIds('shed')).toEqual(sorted(kept));
    // With the database up, rows of refused calls are kept again.
    const afterwards = `m${run}shed-after`;
    writer.write(sampleRow(afterwards), { forwarded: false });
    await writer.flush();
    expect(await storedIds('shed')).toEqual(sorted([...kept, afterwards]));
    expect(writer.stats().shed).toBe(40);
  }, 40_000);

  it('forwards calls again as soon as the rows still to replay are below spoolMaxBytes, before the replayed file is removed', async () => {
    const logger = recordingLogger();
    const onDisk = () =>
      spoolFiles(spoolDir).reduce((total, name) => total + statSync(path.join(spoolDir, name)).size, 0);
    /** The writer's state at the moment it says calls are forwarded again. */
    let atForward: { replayed: number; spoolBytes: number; files: number; onDisk: number } | undefined;
    const writer: AuditWriter = startWriter({
      spoolMaxBytes: 20_000,
      batchSize: 10,
      logger: {
        warn: (obj, msg) => {
          logger.warn(obj, msg);
          if (msg.startsWith('audit spool below its size limit again')) {
            const { replayed, spoolBytes } = writer.stats();
            atForward ??= { replayed, spoolBytes, files: spoolFiles(spoolDir).length, onDisk: onDisk() };
          }
        },
        error: logger.error,
      },
    });
    // An outage: the whole backlog is one file, several times the limit.
    proxy.cut();
    const all = ids(100, 'drain');
    for (const id of all) writer.write(sampleRow(id));
    await writer.flush();
    expect(spoolFiles(spoolDir)).toEqual([ACTIVE_SPOOL_FILE]);
    expect(writer.stats().spoolBytes).toBeGreaterThan(40_000);
    expect(writer.auditBlocked()).toBe(true);
    const refused = `m${run}drain-refused`;
    writer.write(sampleRow(refused));
    await writer.flush();

    proxy.restore();
    await waitFor(() => atForward !== undefined, 15_000, 'calls to be forwarded again');
    // Only part of the backlog was replayed, and the file being replayed is still on disk: the
    // limit measured the rows still to replay, not the file.
    expect(atForward!.replayed).toBeLessThan(all.length + 1);
    expect(atForward!.spoolBytes).toBeLessThan(20_000);
    expect(atForward!.files).toBeGreaterThan(0);
    expect(atForward!.onDisk).toBeGreaterThan(atForward!.spoolBytes);
    await waitFor(async () => (await storedIds('drain')).length === 101, 15_000, 'every row in MySQL');
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be removed');
    expect(await storedIds('drain')).toEqual(sorted([...all, refused]));
    expect(writer.stats()).toMatchObject({ spoolBytes: 0, replayed: 101, rejected: 0, dropped: 0 });
  }, 40_000);

  it('counts nothing to replay once another process took the spool directory over, so a full spool blocks no more', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ spoolMaxBytes: 4096, leaseRefreshMs: 100, logger });
    proxy.cut();
    for (const id of ids(20, 'lease')) writer.write(sampleRow(id));
    await writer.flush();
    writer.write(sampleRow(`m${run}lease-refused`));
    await writer.flush();
    expect(writer.auditBlocked()).toBe(true);

    // This process stalled past the stale limit: another one took the directory over and replayed
    // its files. This one never removes them, so it must stop counting them.
    const leaseFile = path.join(spoolDir, LEASE_FILE);
    const lease = JSON.parse(readFileSync(leaseFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(
      leaseFile,
      `${JSON.stringify({ ...lease, host: 'other-host', pid: 4242, token: 'other' })}\n`,
    );
    for (const name of spoolFiles(spoolDir)) unlinkSync(path.join(spoolDir, name));
    await waitFor(() => !writer.auditBlocked(), 15_000, 'calls to be forwarded again');
    expect(writer.stats().spoolBytes).toBe(0);
    const messages = logger.records.map((r) => r.msg);
    expect(messages.some((m) => m.startsWith('audit spool directory taken over'))).toBe(true);
    await waitFor(
      () =>
        logger.records.some(
          (r) => r.msg === 'audit spool below its size limit again: inbound calls are forwarded again',
        ),
      5_000,
      'the writer to say calls are forwarded again',
    );

    // Rows it still spools are handed over as files of their own: the new holder's to count.
    const handed = ids(20, 'lease-handed');
    for (const id of handed) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.stats().spoolBytes).toBe(0);
    expect(writer.auditBlocked()).toBe(false);
    const files = readdirSync(spoolDir).filter((name) => name.endsWith('.replay.jsonl'));
    expect(files.flatMap((name) => readJsonLines(path.join(spoolDir, name))).length).toBe(handed.length);
  }, 40_000);

  it('cannot audit while spool appends fail with the database down, far below the limit, and can again once the disk takes rows', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ batchSize: 5, maxQueue: 10, replayIntervalMs: 100, logger });
    proxy.cut();
    // A directory where the spool file should be: every append fails (EISDIR), as on a full or broken disk.
    mkdirSync(path.join(spoolDir, ACTIVE_SPOOL_FILE));
    expect(writer.auditBlocked()).toBe(false);
    const all = ids(20, 'diskfail');
    for (const id of all) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.stats()).toMatchObject({ queued: 20, spooled: 0, spoolBytes: 0 });
    expect(writer.auditBlocked()).toBe(true);
    // The row of a call refused meanwhile says why, at error.
    const refused = `m${run}diskfail-refused`;
    writer.write(sampleRow(refused));
    const blocked = logger.records.filter((r) => r.msg.startsWith('audit spool failing'));
    expect(blocked.map((r) => r.level)).toEqual(['error']);

    // The disk takes rows again, the database is still down: they are durable in the spool.
    rmdirSync(path.join(spoolDir, ACTIVE_SPOOL_FILE));
    await waitFor(() => !writer.auditBlocked(), 15_000, 'the held rows to reach the spool');
    await writer.flush();
    expect(writer.stats()).toMatchObject({ queued: 0, spooled: 21, dropped: 0 });
    await waitFor(
      () =>
        logger.records.some((r) => r.msg === 'audit rows are kept again: inbound calls are forwarded again'),
      5_000,
      'the writer to say calls are forwarded again',
    );

    proxy.restore();
    await waitFor(async () => (await storedIds('diskfail')).length === 21, 15_000, 'every row in MySQL');
    expect(await storedIds('diskfail')).toEqual(sorted([...all, refused]));
  }, 40_000);

  it('goes back to direct inserts when MySQL returns while the spool disk fails, and replays the spool once the disk works', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ batchSize: 5, maxQueue: 10, replayIntervalMs: 100, logger });
    proxy.cut();
    const spooled = ids(10, 'brokendisk-spooled');
    for (const id of spooled) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.stats()).toMatchObject({ spooled: 10, queued: 0 });

    // The spool disk fails while it holds those rows: a file where the directory was, so every
    // spool operation (append, seal, read, remove, the lease) fails, as root too. The files are kept aside.
    const aside = `${spoolDir}.aside`;
    renameSync(spoolDir, aside);
    writeFileSync(spoolDir, '');
    try {
      const held = ids(3, 'brokendisk-held');
      for (const id of held) writer.write(sampleRow(id));
      await writer.flush();
      expect(writer.auditBlocked()).toBe(true);

      // MySQL is back, the disk still fails: calls pass and their rows go straight to MySQL.
      proxy.restore();
      await waitFor(() => !writer.auditBlocked(), 15_000, 'calls to pass again');
      const direct = ids(20, 'brokendisk-direct');
      for (const id of direct) writer.write(sampleRow(id));
      await writer.flush();
      await waitFor(
        async () => (await storedIds('brokendisk')).length === held.length + direct.length,
        15_000,
        'the rows of calls made while the disk fails in MySQL',
      );
      expect(writer.auditBlocked()).toBe(false);
      expect(writer.stats()).toMatchObject({ queued: 0, dropped: 0 });
      // The replay keeps failing every round, and says so at most every 10 s.
      const diskErrors = () =>
        logger.records.filter((r) => r.msg.startsWith('audit spool replay failed on a disk error'));
      await waitFor(() => diskErrors().length > 0, 5_000, 'the disk error to be logged');
      await sleep(500);
      expect(diskErrors().length).toBeLessThanOrEqual(2);
    } finally {
      // The disk works again.
      unlinkSync(spoolDir);
      renameSync(aside, spoolDir);
    }
    await waitFor(
      async () => (await storedIds('brokendisk')).length === 33,
      15_000,
      'the spooled rows to be replayed',
    );
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be removed');
    expect((await storedIds('brokendisk')).length).toBe(33);
    expect(await storedIds('brokendisk-spooled')).toEqual(sorted(spooled));
    expect(writer.stats()).toMatchObject({ replayed: 10, spooled: 10, queued: 0, rejected: 0, dropped: 0 });
  }, 60_000);

  it('forwards calls again when MySQL returns with the spool at its limit and its disk failing', async () => {
    const logger = recordingLogger();
    const writer = startWriter({
      batchSize: 5,
      maxQueue: 10,
      replayIntervalMs: 100,
      spoolMaxBytes: 1024,
      logger,
    });
    proxy.cut();
    const spooled = ids(10, 'fulldisk-spooled');
    for (const id of spooled) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.stats().spoolBytes).toBeGreaterThanOrEqual(1024);
    expect(writer.auditBlocked()).toBe(true);

    // The disk fails (see above) with the spool full: the replay cannot even seal it.
    const aside = `${spoolDir}.aside`;
    renameSync(spoolDir, aside);
    writeFileSync(spoolDir, '');
    try {
      // MySQL is back: new rows can go straight to it, so calls pass although the spool is still full.
      proxy.restore();
      await waitFor(() => !writer.auditBlocked(), 15_000, 'calls to pass again');
      expect(writer.stats().spoolBytes).toBeGreaterThanOrEqual(1024);
      const direct = ids(5, 'fulldisk-direct');
      for (const id of direct) writer.write(sampleRow(id));
      await writer.flush();
      expect(await storedIds('fulldisk-direct')).toEqual(sorted(direct));
      // MySQL goes again: the full spool refuses calls again.
      proxy.cut();
      writer.write(sampleRow(`m${run}fulldisk-cut-0`));
      await writer.flush();
      await waitFor(() => writer.auditBlocked(), 10_000, 'calls to be refused again');
      proxy.restore();
      await waitFor(() => !writer.auditBlocked(), 15_000, 'calls to pass once more');
    } finally {
      unlinkSync(spoolDir);
      renameSync(aside, spoolDir);
    }
    await waitFor(() => spoolFiles(spoolDir).length === 0, 15_000, 'the spool to be replayed and removed');
    await waitFor(async () => (await storedIds('fulldisk')).length === 16, 15_000, 'every row in MySQL');
    expect(await storedIds('fulldisk-spooled')).toEqual(sorted(spooled));
    expect(writer.stats()).toMatchObject({ queued: 0, dropped: 0, spoolBytes: 0 });
  }, 60_000);

  it('spools the backlog at once when the queue outgrows maxQueue, and loses nothing', async () => {
    const writer = startWriter({ batchSize: 10, maxQueue: 50, writeTimeoutMs: 1500 });
    proxy.hang();
    const all = ids(200, 'backlog');
    // All in one tick: the first batch is stuck in the hung database, the rest must not wait for it.
    for (const id of all) writer.write(sampleRow(id));
    await waitFor(() => writer.stats().spooled >= 150, 1000, 'the backlog to be spooled');
    expect(writer.stats().written).toBe(0);
    expect(writer.stats().queued).toBeGreaterThanOrEqual(10);

    proxy.restore();
    await writer.flush();
    await waitFor(
      async () => (await storedIds('backlog')).length === 200,
      25_000,
      'every backlog row in MySQL',
    );
    expect(await storedIds('backlog')).toEqual(sorted(all));
  }, 40_000);

  it('holds rows in memory while the database and the spool disk both fail, up to a limit', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ batchSize: 5, maxQueue: 10, replayIntervalMs: 200, logger });
    proxy.cut();
    // A directory where the spool file should be: every append fails (EISDIR), even as root.
    mkdirSync(path.join(spoolDir, ACTIVE_SPOOL_FILE));
    const kept = ids(100, 'doublefault');
    for (const id of kept) writer.write(sampleRow(id));
    await writer.flush();
    expect(writer.stats()).toMatchObject({ queued: 100, spooled: 0, written: 0, dropped: 0 });
    expect(logger.records.map((r) => r.msg)).toContain(
      'audit flush left rows in memory: database and spool failing',
    );

    // Rows of refused calls are not held beyond twice maxQueue: they would crowd out forwarded ones.
    writer.write(sampleRow(`m${run}doublefault-refused`), { forwarded: false });
    expect(writer.stats()).toMatchObject({ queued: 100, shed: 1, dropped: 0 });
    expect(logger.records.map((r) => r.msg)).toContain(
      'audit rows of refused calls not kept: the spool disk fails and twice the queue limit is held in memory',
    );

    // Beyond four times maxQueue, new rows are dropped (and counted) rather than exhaust memory.
    for (let i = 0; i < 10; i += 1) writer.write(sampleRow(`m${run}doublefault-dropped-${i}`));
    expect(writer.stats()).toMatchObject({ queued: 100, dropped: 10 });

    rmdirSync(path.join(spoolDir, ACTIVE_SPOOL_FILE));
    proxy.restore();
    await waitFor(
      async () => (await storedIds('doublefault')).length === 100,
      10_000,
      'the held rows in MySQL',
    );
    expect(await storedIds('doublefault')).toEqual(sorted(kept));
    expect(logger.text()).not.toContain(BODY_MARKER);
  }, 30_000);

  it('keeps every row while another session locks audit_log, and rejects none', async () => {
    const logger = recordingLogger();
    const writer = startWriter({ batchSize: 5, writeTimeoutMs: 300, logger });
    const locker = await createConnection(t.databaseUrl!);
    try {
      // `select 1` still answers; every insert waits on the lock until keygate's timeout.
      await locker.query('LOCK TABLES audit_log WRITE');
      const all = ids(20, 'locked');
      for (const id of all) writer.write(sampleRow(id));
      await writer.flush();
      await sleep(1500);
      // As an operator (or MySQL's own lock wait timeout) would: the waiting inserts fail at once.
      // (The writer stops each one that timed out itself, so wait for one that is still waiting.)
      const database = new URL(t.databaseUrl!).pathname.slice(1);
      let waiting: RowDataPacket[] = [];
      await waitFor(
        async () => {
          [waiting] = await locker.query<RowDataPacket[]>(
            "select id from information_schema.processlist where db = ? and info like 'insert%'",
            [database],
          );
          return waiting.length > 0;
        },
        10_000,
        'an insert waiting for the lock',
      );
      for (const { id } of waiting) await locker.query(`KILL QUERY ${Number(id)}`);
      await sleep(500);
      // Read through the session holding the lock: any other one would wait for it.
      const [stored] = await locker.query<RowDataPacket[]>(
        'select count(*) as n from audit_log where request_id like ?',
        [`m${run}locked-%`],
      );
      expect(Number(stored[0]?.n)).toBe(0);
      await locker.query('UNLOCK TABLES');

      await waitFor(async () => (await storedIds('locked')).length === 20, 15_000, 'every row in MySQL');
      await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be replayed');
      expect(await storedIds('locked')).toEqual(sorted(all));
      expect(existsSync(path.join(spoolDir, REJECTED_FILE))).toBe(false);
      expect(writer.stats()).toMatchObject({ rejected: 0, dropped: 0 });
      expect(waiting.length).toBeGreaterThan(0);
    } finally {
      await locker.end();
    }
  }, 40_000);

  it('stops on the server each insert that timed out waiting for a row lock, and stores every row once', async () => {
    const db = proxiedDb();
    const writer = startWriter({
      db,
      batchSize: 5,
      writeTimeoutMs: 300,
      replayIntervalMs: 50,
      logger: recordingLogger(),
    });
    const warm = `m${run}rowlock-warm`;
    writer.write(sampleRow(warm));
    await writer.flush();
    expect(writer.stats().written).toBe(1);
    let connectionsMade = 0;
    mysqlPoolOf(db)!.on('connection', () => {
      connectionsMade += 1;
    });
    const database = new URL(t.databaseUrl!).pathname.slice(1);
    const locker = await createConnection(t.databaseUrl!);
    const observer = await createConnection(t.databaseUrl!);
    const busyThreads = async () => {
      const [rows] = await observer.query<RowDataPacket[]>(
        "select count(*) as n from information_schema.processlist where db = ? and command <> 'Sleep' and id <> connection_id()",
        [database],
      );
      return Number(rows[0]?.n);
    };
    try {
      // Another session holds row locks on audit_log in an open transaction: every insert waits
      // for them (up to innodb_lock_wait_timeout, 50 s) while `select 1` answers at once.
      await locker.query('begin');
      await locker.query('select * from audit_log for update');
      const all = ids(20, 'rowlock');
      for (const id of all) writer.write(sampleRow(id));
      await writer.flush();
      // Each call that times out is ended with its connection, so the next one opens another:
      // many replay rounds, and the server threads still busy stay few.
      let most = 0;
      await waitFor(
        async () => {
          most = Math.max(most, await busyThreads());
          return connectionsMade >= 10;
        },
        30_000,
        'ten calls to time out',
      );
      most = Math.max(most, await busyThreads());
      expect(most).toBeLessThanOrEqual(3);
      expect(await storedIds('rowlock')).toEqual([warm]);

      await locker.query('commit');
      await waitFor(async () => (await storedIds('rowlock')).length === 21, 15_000, 'every row in MySQL');
      await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be replayed');
      expect(await storedIds('rowlock')).toEqual(sorted([warm, ...all]));
      expect(writer.stats()).toMatchObject({ queued: 0, rejected: 0, dropped: 0 });
      await waitFor(async () => (await busyThreads()) === 0, 10_000, 'no audit statement left running');
    } finally {
      await locker.end();
      await observer.end();
    }
  }, 60_000);

  it('loses no row written to the spool while a replay is running', async () => {
    // A spool from an earlier run, and a database that takes 10 ms a statement: the replay takes a while.
    const earlier = ids(4000, 'during').map((id) => sampleRow(id, { request_body: 'x', response_body: 'y' }));
    writeFileSync(path.join(spoolDir, ACTIVE_SPOOL_FILE), earlier.map(spoolLine).join(''));
    proxy.cut();
    const writer = startWriter({
      db: proxiedDb().withPlugin(slowStatements(10)),
      batchSize: 100,
      replayIntervalMs: 50,
    });
    // The database is down: these go to the spool.
    const fresh = Array.from({ length: 600 }, (_, i) => sampleRow(`m${run}during-new-${i}`));
    for (const row of fresh.slice(0, 100)) writer.write(row);
    await writer.flush();
    expect(writer.stats().spooled).toBe(100);

    proxy.restore();
    await waitFor(() => writer.stats().replayed > 0, 5000, 'the replay to start');
    // Until the replay is done the database counts as down, so these are spooled too, into a
    // fresh active file while the sealed one is being replayed.
    let spooledDuringReplay = 0;
    for (const [i, row] of fresh.slice(100).entries()) {
      writer.write(row);
      if (i % 50 === 49) {
        await writer.flush();
        if (writer.stats().replayed < 4000) spooledDuringReplay = writer.stats().spooled - 100;
        await sleep(10);
      }
    }
    await writer.flush();
    await waitFor(async () => (await storedIds('during')).length === 4600, 30_000, 'every row in MySQL');
    await waitFor(() => spoolFiles(spoolDir).length === 0, 5_000, 'the spool to be removed');
    expect(await storedIds('during')).toEqual(sorted([...earlier, ...fresh].map((r) => r.request_id)));
    // The scenario really exercised the path.
    expect(spooledDuringReplay).toBeGreaterThan(0);
  }, 60_000);
});

/** Every statement takes at least `ms` longer. */
function slowStatements(ms: number): KyselyPlugin {
  return {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      await sleep(ms);
      return args.result;
    },
  };
}
