/**
 * The inbound audit writer: one `audit_log` row per call, written off the request path.
 *
 * write() only pushes onto an in-memory queue. A drain loop sends the queue to the database in
 * multi-row inserts, one at a time, each bounded by writeTimeoutMs: full batches as soon as
 * batchSize rows are waiting, and what is left flushIntervalMs later. Rows that arrive while an
 * insert runs wait for the next full batch or the timer rather than follow in a batch of their
 * own: under load every insert carries batchSize rows (one statement, one commit) instead of the
 * few that came in during the previous one. When an insert fails or times out the
 * writer marks the database down, appends the batch to the spool (fsync'd JSON lines, see
 * spool.ts) and sends everything after it to the spool too, without waiting on the database
 * again. A replay loop, every replayIntervalMs, seals the spool and re-inserts it in order; when
 * that succeeds the database is marked up and rows go straight to it again. When the database
 * answers but the spool disk fails the replay (a seal, read or remove: a read-only or broken disk),
 * the database is marked up too, as rows can be kept there; the spool's files stay as they are
 * (never read unsealed, replayed oldest first) and are retried every round, so their rows land
 * once the disk works, after newer ones, each once (see below). A spool left by an earlier
 * process is replayed at start-up.
 *
 * Only an error that names a row's content (isBadRowError: a value too long, out of range, ...)
 * sets a row aside, in the rejected file; the replay finds that row by inserting its batch one row
 * at a time. Every other failure (a timeout, a lock wait, a deadlock, a lost connection) means the
 * database cannot take rows now, on both paths: the rows stay in the spool for the next replay.
 *
 * Every insert ignores rows whose request_id is already stored, so a batch sent twice (an insert
 * that timed out but committed, a replay cut short by a crash or an outage) never duplicates.
 * If the queue outgrows maxQueue (the database is slow, not down), it is spooled at once rather
 * than held or dropped. A row is dropped only when the database AND the spool disk both fail and
 * the queue reaches four times maxQueue; that is logged and counted.
 *
 * Database calls (inserts and the `select 1` probe) go one at a time. On MySQL each runs on a pool
 * connection of its own, and one that outlives writeTimeoutMs is ended with its connection, so a
 * connection that will never answer (a dead host, a dropped connection) does not hold the writer up:
 * the next call opens another, and the statement it ran is stopped on the server with KILL QUERY
 * (see killStatement). A call that cannot be ended (waiting for a connection; SQLite) keeps
 * every other one out until it returns (rows go to the spool, the probe is not repeated). Either
 * way a stalled MySQL holds at most one connection of the pool the writer shares with the admin
 * API and the partner-key and route caches.
 *
 * auditBlocked() says when the writer cannot currently make a row durable, and the inbound
 * pipeline then stops forwarding calls rather than serve calls whose rows may not be kept: while
 * the rows still to replay from the spool reach spoolMaxBytes (a long outage), and while spool
 * appends fail (a full or broken disk) with the database down or too slow to take the queue, so
 * rows are held in memory. Rows still go to the spool as long as the disk takes them. The spool
 * counts what is still to replay, less each replayed batch as it commits, so calls pass again as
 * soon as the replay has brought that below the limit, before the file being replayed is removed.
 *
 * The rows of refused calls (calls that reached no upstream: the 503s of a blocked writer, bad
 * signatures, rate limits, ...) still come while calls are refused, as fast as partners retry. So
 * that they cannot fill the disk the limit protects, they are kept only up to a second limit, and
 * counted (`shed`) instead of kept past it: while the database is down and the spool holds twice
 * spoolMaxBytes still to replay, or while spool appends fail with twice maxQueue rows held in
 * memory. The rows of forwarded calls are always kept (up to the hard limit above).
 */
import { summarizeError } from '../../logger.ts';
import type { Db } from '../../storage/db.ts';
import type { NewAuditLogRow } from '../../storage/schema.ts';
import { withTimeout } from '../../with-timeout.ts';
import {
  type AuditStatements,
  estimateRowBytes,
  isBadRowError,
  parseSpoolLine,
  startAuditCall,
  toAuditRow,
} from './insert.ts';
import { openSpool } from './spool.ts';

export { ACTIVE_SPOOL_FILE, REJECTED_FILE, SpoolDirError } from './spool.ts';

export interface AuditLogger {
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface AuditWriterStats {
  /** Rows accepted but not yet durable (in memory, or being inserted / spooled). */
  queued: number;
  /** Rows inserted directly (counted as sent: a row the database already held counts too). */
  written: number;
  /** Rows appended to the spool. */
  spooled: number;
  /** Rows inserted from the spool, including a spool left by an earlier process. */
  replayed: number;
  /** Spool lines the database refused for their content (isBadRowError), or that did not parse; moved to REJECTED_FILE. */
  rejected: number;
  /** Rows lost because the database and the spool disk both failed with the queue full. */
  dropped: number;
  /**
   * Rows of refused calls (forwarded to no upstream) not kept while the spool held twice
   * spoolMaxBytes still to replay, or while spool appends failed with twice maxQueue rows held.
   */
  shed: number;
  /** Bytes of rows in the spool still to replay (its files, less what the replay has inserted). */
  spoolBytes: number;
}

export interface AuditWriter {
  /**
   * Non-blocking: enqueue a row; never throws, never awaits the DB on the request path.
   * `forwarded: false` marks the row of a call that reached no upstream (refused by keygate): such
   * a row is shed rather than kept while the writer is far behind (see `shed`).
   */
  write(row: NewAuditLogRow, opts?: { forwarded?: boolean }): void;
  /** Flushes everything queued (to DB, or to the spool when the DB is down). Called on SIGTERM. */
  flush(): Promise<void>;
  /** flush + stop timers. Leaves `db` open (the caller owns it). A write after close is spooled synchronously. */
  close(): Promise<void>;
  stats(): AuditWriterStats;
  /**
   * True while the writer cannot currently make a row durable: the rows still to replay from the
   * spool have reached spoolMaxBytes (unless the database is up and only the spool's disk keeps
   * them there, so new rows go to the database), or spool appends are failing while the database
   * is down (or the queue has outgrown maxQueue), so rows are held in memory. The inbound pipeline
   * then refuses calls. Read from memory, no disk access: cheap enough for every call.
   */
  auditBlocked(): boolean;
}

export interface AuditWriterOptions {
  db: Db;
  /** Directory for the spool (created 0700). One writer per directory: a second one is refused (SpoolDirError). */
  spoolDir: string;
  /** Rows per insert statement, 1..1000. */
  batchSize?: number;
  /** How long the first queued row waits for a batch to fill. */
  flushIntervalMs?: number;
  /** Queue length beyond which rows are spooled at once; at least batchSize. */
  maxQueue?: number;
  /** How often the spool is retried while it holds rows. */
  replayIntervalMs?: number;
  /**
   * An insert that takes longer counts as failed (its rows are spooled; a late commit is harmless)
   * and is ended with its MySQL connection; see callDatabase.
   */
  writeTimeoutMs?: number;
  /** How often the spool directory's lease is renewed (see spool.ts). */
  leaseRefreshMs?: number;
  /** Bytes of rows still to replay from the spool at which auditBlocked() turns true; 0: no limit. */
  spoolMaxBytes?: number;
  logger?: AuditLogger;
}

/** Keeps one statement well below MySQL's default 16 MiB max_allowed_packet, even with escaping. */
const MAX_STATEMENT_BYTES = 4 * 1024 * 1024;
/** With the spool disk failing, the queue holds this many times maxQueue before dropping rows. */
const HARD_LIMIT_FACTOR = 4;
/** A replay stopped by the spool disk is logged at most this often (it is tried every replayIntervalMs). */
const SPOOL_DISK_LOG_MS = 10_000;
/** The default spoolMaxBytes: 1 GiB. */
export const DEFAULT_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;

export function createAuditWriter({
  db,
  spoolDir,
  batchSize = 256,
  flushIntervalMs = 50,
  maxQueue = 10_000,
  replayIntervalMs = 1_000,
  writeTimeoutMs = 3_000,
  leaseRefreshMs = 5_000,
  spoolMaxBytes = DEFAULT_SPOOL_MAX_BYTES,
  logger = stderrLogger,
}: AuditWriterOptions): AuditWriter {
  requireInteger('batchSize', batchSize, 1, 1000);
  requireInteger('flushIntervalMs', flushIntervalMs, 0);
  requireInteger('maxQueue', maxQueue, batchSize);
  requireInteger('replayIntervalMs', replayIntervalMs, 1);
  requireInteger('writeTimeoutMs', writeTimeoutMs, 1);
  requireInteger('leaseRefreshMs', leaseRefreshMs, 1);
  requireInteger('spoolMaxBytes', spoolMaxBytes, 0);

  /**
   * Another process took the spool directory over (this one stalled past the stale limit). Its
   * files are the new holder's now: this process stops replaying (no seal, no remove; the spool
   * refuses both too), and rows it still spools go to sealed files of their own, which the new
   * holder replays. Only the database probe goes on, so direct inserts resume when it is back.
   */
  let leaseLost = false;
  const spool = openSpool(spoolDir, {
    leaseRefreshMs,
    onLeaseLost: (holder) => {
      // From here on the spool counts nothing to replay (bytes() is 0): the files are the new holder's.
      leaseLost = true;
      logger.error(
        { spoolDir, holder },
        'audit spool directory taken over by another process; this process no longer replays it ' +
          '(rows it spools are left there as files of their own for the new holder)',
      );
    },
    onLeaseRenewError: (err) =>
      logger.warn({ err: summarizeError(err), spoolDir }, 'audit spool lease renewal failed; trying again'),
  });
  const counts = { written: 0, spooled: 0, replayed: 0, rejected: 0, dropped: 0, shed: 0 };
  let queue: NewAuditLogRow[] = [];
  let rowsInFlight = 0;
  const tasks = new Set<Promise<void>>();
  let draining = false;
  let flushTimer: NodeJS.Timeout | undefined;
  let dbUp = true;
  /** Bumped on every failed database call, so a replay that raced a failure does not mark the DB up. */
  let failureEpoch = 0;
  let spoolHasRows = spool.hasRowsSync();
  /** After the spool disk fails, it is not tried again before this time. */
  let spoolRetryAt = 0;
  let lastDropLogAt = 0;
  let lastShedLogAt = 0;
  /** The last spool append failed (cleared by one that succeeds, or once the database is up again). */
  let spoolFailing = false;
  /**
   * The last replay round reached the database but the spool disk stopped it (a seal, read or
   * remove failed): rows go straight to the database, so a full spool refuses no calls meanwhile.
   */
  let replayStuckOnDisk = false;
  let lastBlockedLogAt = 0;
  let lastSpoolDiskLogAt = Number.NEGATIVE_INFINITY;
  /** Why auditBlocked() was last seen true by write(), so the writer says when calls pass again. */
  let blockedBy: 'limit' | 'disk' | undefined;
  let replaying: Promise<void> | undefined;
  /** A database call is running (see callDatabase); `dbCallHung`: it outlived writeTimeoutMs. */
  let dbCallRunning = false;
  let dbCallHung = false;
  const dbCallWaiters: Array<() => void> = [];
  /** Lines already inserted from each sealed file, so a replay resumed in this process skips them. */
  const replayedLines = new Map<string, number>();
  let state: 'open' | 'closing' | 'closed' = 'open';
  let closed: Promise<void> | undefined;

  const replayTimer = setInterval(() => {
    noteUnblocked();
    if (spoolHasRows || !dbUp) startReplay();
  }, replayIntervalMs);
  replayTimer.unref();
  if (spoolHasRows) startReplay();

  function write(row: NewAuditLogRow, opts?: { forwarded?: boolean }): void {
    try {
      if (auditBlocked()) reportBlocked();
      else noteUnblocked();
      if (opts?.forwarded === false && shedRefusedRows()) {
        shedRow();
        return;
      }
      const copy = toAuditRow(row);
      if (state === 'closed') {
        spoolNow([copy]);
        return;
      }
      if (queue.length >= maxQueue * HARD_LIMIT_FACTOR && Date.now() < spoolRetryAt) {
        dropRows(1);
        return;
      }
      queue.push(copy);
      if (queue.length >= maxQueue) spillQueue();
      else if (queue.length >= batchSize) startDrain('full');
      else armFlushTimer(flushIntervalMs);
    } catch (err) {
      logger.error({ err: summarizeError(err) }, 'audit row could not be queued');
    }
  }

  // ---- the drain: queue -> database, or -> spool while the database is down ----

  /**
   * `full`: whole batches only (the queue just reached batchSize). `timer`: what is queued now,
   * however little, then whole batches only: rows that arrive meanwhile wait for their own timer.
   * `force` (flush, close): everything, until the queue is empty, back-off or not.
   */
  function startDrain(mode: 'full' | 'timer' | 'force'): void {
    if (draining || queue.length === 0) return;
    clearFlushTimer();
    if (mode !== 'force' && !dbUp && Date.now() < spoolRetryAt) {
      armFlushTimer(spoolRetryAt - Date.now());
      return;
    }
    draining = true;
    track(
      drainQueue(mode).finally(() => {
        draining = false;
        // A partial batch waits for the timer; after a spool disk failure, for the back-off too.
        if (queue.length > 0) armFlushTimer(Math.max(flushIntervalMs, spoolRetryAt - Date.now()));
      }),
    );
  }

  /** Sends the queue (see startDrain for how much): to the database, or to the spool while it is down. */
  async function drainQueue(mode: 'full' | 'timer' | 'force'): Promise<void> {
    for (let first = true; queue.length > 0; first = false) {
      const wholeBatchesOnly = mode === 'full' || (mode === 'timer' && !first);
      if (wholeBatchesOnly && queue.length < batchSize) return;
      if (!dbUp) {
        const rows = queue;
        queue = [];
        if (!(await spoolRows(rows))) return;
        continue;
      }
      const batch = takeBatch();
      rowsInFlight += batch.length;
      let inserted = false;
      try {
        await callDatabase((statements) => statements.insert(batch));
        inserted = true;
      } catch (err) {
        // A bad row: the database is fine; the replay sets the row aside and stores the others.
        if (!isBadRowError(err)) markDbDown(err);
      } finally {
        rowsInFlight -= batch.length;
      }
      if (inserted) counts.written += batch.length;
      else if (!(await spoolRows(batch))) return;
    }
  }

  function takeBatch(): NewAuditLogRow[] {
    let count = 0;
    let bytes = 0;
    while (count < queue.length && count < batchSize) {
      bytes += estimateRowBytes(queue[count]!);
      if (count > 0 && bytes > MAX_STATEMENT_BYTES) break;
      count += 1;
    }
    return queue.splice(0, count);
  }

  /** The database is slow: spool the backlog now instead of holding it in memory. */
  function spillQueue(): void {
    if (Date.now() < spoolRetryAt) {
      armFlushTimer(spoolRetryAt - Date.now());
      return;
    }
    const rows = queue;
    queue = [];
    track(
      spoolRows(rows).then((spooled) => {
        if (!spooled) armFlushTimer(replayIntervalMs);
      }),
    );
  }

  /** Appends rows to the spool; on a disk error puts them back at the head of the queue. */
  async function spoolRows(rows: NewAuditLogRow[]): Promise<boolean> {
    rowsInFlight += rows.length;
    try {
      await spool.append(rows);
      counts.spooled += rows.length;
      spoolHasRows = true;
      spoolFailing = false;
      return true;
    } catch (err) {
      spoolFailing = true;
      spoolRetryAt = Date.now() + replayIntervalMs;
      logger.error(
        { err: summarizeError(err), rows: rows.length, spoolDir },
        'audit spool append failed; rows kept in memory',
      );
      queue = rows.concat(queue);
      return false;
    } finally {
      rowsInFlight -= rows.length;
    }
  }

  /** After close: nothing runs any more, so append synchronously rather than lose the row. */
  function spoolNow(rows: NewAuditLogRow[]): void {
    try {
      spool.appendSync(rows);
      counts.spooled += rows.length;
    } catch (err) {
      logger.error({ err: summarizeError(err), spoolDir }, 'audit spool append failed after close');
      dropRows(rows.length);
    }
  }

  function dropRows(count: number): void {
    counts.dropped += count;
    if (Date.now() - lastDropLogAt >= 1000) {
      lastDropLogAt = Date.now();
      logger.error({ dropped: counts.dropped }, 'audit rows dropped: database and spool both failing');
    }
  }

  /** See the file's comment: the second limit, past which rows of refused calls are not kept. */
  function shedRefusedRows(): boolean {
    if (spoolFailing && queue.length >= 2 * maxQueue) return true;
    return spoolMaxBytes > 0 && !dbUp && spool.bytes() >= 2 * spoolMaxBytes;
  }

  function shedRow(): void {
    counts.shed += 1;
    if (Date.now() - lastShedLogAt < 1000) return;
    lastShedLogAt = Date.now();
    logger.error(
      { shed: counts.shed, spoolBytes: spool.bytes(), spoolMaxBytes, queued: queue.length, spoolDir },
      spoolFailing
        ? 'audit rows of refused calls not kept: the spool disk fails and twice the queue limit is held in memory'
        : 'audit rows of refused calls not kept: the spool holds twice its size limit still to replay',
    );
  }

  function spoolAtLimit(): boolean {
    return spoolMaxBytes > 0 && spool.bytes() >= spoolMaxBytes;
  }

  function auditBlocked(): boolean {
    // A full spool whose disk fails with the database up holds rows nobody can add to (new ones go
    // to the database): it waits for the disk, and calls pass.
    const limitHolds = spoolAtLimit() && !(dbUp && replayStuckOnDisk);
    return limitHolds || (spoolFailing && (!dbUp || queue.length >= maxQueue));
  }

  /** While calls are refused, every row written says so at error, at most once a second. */
  function reportBlocked(): void {
    const reason = spoolAtLimit() ? 'limit' : 'disk';
    if (reason === blockedBy && Date.now() - lastBlockedLogAt < 1000) return;
    blockedBy = reason;
    lastBlockedLogAt = Date.now();
    if (reason === 'limit') {
      logger.error(
        { spoolBytes: spool.bytes(), spoolMaxBytes, spoolDir },
        'audit spool at its size limit: inbound calls are refused until the database is back and the spool replayed',
      );
    } else {
      logger.error(
        { queued: queue.length + rowsInFlight, spoolDir },
        'audit spool failing with the database unable to take rows: inbound calls are refused until either is back',
      );
    }
  }

  /** Says once when calls pass again after reportBlocked (checked on writes, replay batches and the timer). */
  function noteUnblocked(): void {
    if (blockedBy === undefined || auditBlocked()) return;
    const msg =
      blockedBy === 'limit'
        ? 'audit spool below its size limit again: inbound calls are forwarded again'
        : 'audit rows are kept again: inbound calls are forwarded again';
    blockedBy = undefined;
    logger.warn({ spoolBytes: spool.bytes(), spoolMaxBytes }, msg);
  }

  function markDbDown(err: unknown): void {
    failureEpoch += 1;
    if (!dbUp) return;
    dbUp = false;
    logger.warn({ err: summarizeError(err) }, 'audit database write failed; spooling rows until it is back');
  }

  // ---- the replay: spool -> database ----

  function startReplay(): void {
    if (replaying || state !== 'open') return;
    replaying = replayAll()
      .catch((err) => logger.error({ err: summarizeError(err), spoolDir }, 'audit spool replay failed'))
      .finally(() => {
        replaying = undefined;
      });
  }

  async function replayAll(): Promise<void> {
    while (state === 'open') {
      const epoch = failureEpoch;
      if (!dbUp && !(await databaseReachable())) return;
      let empty: boolean;
      try {
        for (const file of leaseLost ? [] : await spool.seal()) {
          if (!(await replayFile(file))) return;
        }
        // Rows spooled while this replay ran wait in a fresh active file: go round again.
        empty = leaseLost || (await spool.isEmpty());
      } catch (err) {
        // The database answers, the spool disk does not (a seal, read or remove failed): the
        // database counts as up so rows go straight to it, and the spool's files stay where they
        // are (sealed in order, or still the active file) for the next rounds.
        reportSpoolDiskError(err);
        replayStuckOnDisk = true;
        markDbUp(epoch, 'audit database reachable again; the spool disk fails, its rows wait on it');
        noteUnblocked();
        return;
      }
      replayStuckOnDisk = false;
      markDbUp(epoch, 'audit database reachable again; spool replayed');
      if (!dbUp) return;
      if (empty) {
        // With the lease lost, the directory's rows are the new holder's to replay.
        spoolHasRows = false;
        return;
      }
    }
  }

  function markDbUp(epoch: number, msg: string): void {
    if (dbUp || epoch !== failureEpoch) return;
    dbUp = true;
    // Rows go to the database again; the spool disk is tried again when they next cannot.
    spoolFailing = false;
    logger.warn({ replayed: counts.replayed }, msg);
  }

  /** A replay round stopped by the spool disk: logged at most once every SPOOL_DISK_LOG_MS. */
  function reportSpoolDiskError(err: unknown): void {
    if (Date.now() - lastSpoolDiskLogAt < SPOOL_DISK_LOG_MS) return;
    lastSpoolDiskLogAt = Date.now();
    logger.error(
      { err: summarizeError(err), spoolBytes: spool.bytes(), spoolDir },
      'audit spool replay failed on a disk error; rows go to the database as long as it takes them, ' +
        'and the spool is tried again every replay round',
    );
  }

  /**
   * Inserts one sealed file in order and removes it; false when stopped (database down, closing).
   * As each batch commits, the spool stops counting the bytes replayed so far (see auditBlocked).
   */
  async function replayFile(file: string): Promise<boolean> {
    const skip = replayedLines.get(file) ?? 0;
    let lineNumber = 0;
    /** Bytes of the file through the current line (each line and its newline). */
    let offset = 0;
    let batch: NewAuditLogRow[] = [];
    let batchBytes = 0;
    /** Inserts the pending batch; on success the file counts as done through `line` (at `lineEnd`). */
    const commit = async (line: number, lineEnd: number): Promise<boolean> => {
      if (batch.length > 0 && !(await insertReplayed(batch))) return false;
      replayedLines.set(file, line);
      spool.replayedThrough(file, lineEnd);
      noteUnblocked();
      batch = [];
      batchBytes = 0;
      return true;
    };
    for await (const { text: line, end } of spool.readLines(file)) {
      lineNumber += 1;
      const lineStart = offset;
      offset = end;
      if (lineNumber <= skip || line.trim() === '') continue;
      const row = parseSpoolLine(line);
      if (!row) {
        // Settle the rows before it first, so a retry neither loses nor re-rejects this line.
        if (!(await commit(lineNumber - 1, lineStart))) return false;
        await rejectLines([line], 'line is not an audit row (torn or corrupt)');
        replayedLines.set(file, lineNumber);
        spool.replayedThrough(file, offset);
        continue;
      }
      batch.push(row);
      batchBytes += line.length;
      if (batch.length >= batchSize || batchBytes >= MAX_STATEMENT_BYTES) {
        if (!(await commit(lineNumber, offset))) return false;
        if (state !== 'open' || leaseLost) return false;
      }
    }
    if (!(await commit(lineNumber, offset))) return false;
    await spool.remove(file);
    replayedLines.delete(file);
    noteUnblocked();
    return true;
  }

  /**
   * Inserts replayed rows; false when the database cannot take them now (they stay in the spool).
   * A batch refused for a bad row goes in again one row at a time, and only the rows refused for
   * their own content move to the rejected file, so one bad line cannot block the spool forever
   * and a slow or locked database never sends a good row there.
   */
  async function insertReplayed(rows: NewAuditLogRow[]): Promise<boolean> {
    try {
      await callDatabase((statements) => statements.insert(rows));
      counts.replayed += rows.length;
      return true;
    } catch (err) {
      if (!isBadRowError(err)) {
        markDbDown(err);
        return false;
      }
    }
    for (const row of rows) {
      try {
        await callDatabase((statements) => statements.insert([row]));
        counts.replayed += 1;
      } catch (err) {
        if (!isBadRowError(err)) {
          markDbDown(err);
          return false;
        }
        await rejectLines([JSON.stringify(row)], summarizeError(err).message);
      }
    }
    return true;
  }

  async function rejectLines(lines: string[], reason: string): Promise<void> {
    await spool.reject(lines);
    counts.rejected += lines.length;
    logger.error({ count: lines.length, reason, spoolDir }, 'audit rows moved to the rejected file');
  }

  async function databaseReachable(): Promise<boolean> {
    try {
      await callDatabase((statements) => statements.probe());
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Runs one database call, bounded by writeTimeoutMs, one at a time. On MySQL a call runs on a
   * pool connection of its own, and one that times out is ended with its connection (see
   * startAuditCall): mysql2 has no query timeout, and a connection whose server vanished without
   * closing it (a dead host, a firewall that dropped its state) would otherwise hang for as long as
   * TCP retransmits, while a fresh connection works. The next call then starts at once, on another
   * connection, and one more call, queued like the others, kills the ended call's statement on
   * the server (killStatement). A call that cannot be ended (still waiting for a connection, or SQLite) keeps the
   * others out until it returns: they fail at once instead of taking another connection (a stalled
   * MySQL would otherwise get a new probe every replayIntervalMs until the shared pool is
   * exhausted). Either way the writer holds at most one pool connection. A call that finds another
   * one running waits for it, at most until that one times out.
   */
  async function callDatabase<T>(
    run: (statements: AuditStatements) => Promise<T>,
    { killOnTimeout = true } = {},
  ): Promise<T> {
    while (dbCallRunning) {
      if (dbCallHung) {
        throw new Error(
          `an earlier audit database call has not returned (it took longer than ${writeTimeoutMs} ms)`,
        );
      }
      await new Promise<void>((resolve) => dbCallWaiters.push(resolve));
    }
    dbCallRunning = true;
    const call = startAuditCall(db, run);
    const settled = () => {
      dbCallRunning = false;
      dbCallHung = false;
      wakeDbCallWaiters();
    };
    call.result.then(settled, settled);
    return withTimeout(call.result, writeTimeoutMs, () => {
      const timedOut = new Error(`audit database call took longer than ${writeTimeoutMs} ms`);
      const threadId = call.threadId;
      // Ended: its result rejects now, and settled() lets the next call in.
      if (!call.end(timedOut)) {
        dbCallHung = true;
        wakeDbCallWaiters();
      } else if (killOnTimeout && threadId !== undefined) {
        killStatement(threadId);
      }
      return timedOut;
    });
  }

  /**
   * Stops, on the server, the statement of a call that timed out and was ended. Closing its
   * connection does not: MySQL and MariaDB go on running it, and an insert waiting for a row lock
   * waits up to innodb_lock_wait_timeout (50 s by default), one behind a table lock for ever, so
   * every replay round against a locked audit_log would leave another server thread behind until
   * max_connections runs out. `KILL QUERY` (the same on both, and allowed on a user's own
   * threads) ends any wait, costs nothing until a call times out, and runs as a database call
   * like any other: one at a time, bounded by writeTimeoutMs, on the writer's one pool connection.
   * Not retried: a kill that fails (MySQL unreachable, the statement already over) leaves at most
   * that one statement to the server's own timeouts.
   */
  function killStatement(threadId: number): void {
    callDatabase((statements) => statements.killQuery(threadId), { killOnTimeout: false }).catch(() => {});
  }

  function wakeDbCallWaiters(): void {
    for (const wake of dbCallWaiters.splice(0)) wake();
  }

  // ---- timers, flush, close ----

  function armFlushTimer(delayMs: number): void {
    if (flushTimer || state === 'closed') return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      startDrain('timer');
    }, delayMs);
  }

  function clearFlushTimer(): void {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
  }

  function track(task: Promise<void>): void {
    const safe = task.catch((err) => logger.error({ err: summarizeError(err) }, 'audit writer task failed'));
    tasks.add(safe);
    void safe.finally(() => tasks.delete(safe));
  }

  async function settle(): Promise<void> {
    while (tasks.size > 0) await Promise.all([...tasks]);
  }

  async function flush(): Promise<void> {
    if (state === 'closed') return;
    // A drain of full batches only may be running, and a spool disk failure leaves rows queued:
    // a few rounds, then say so.
    for (let round = 0; round < 3; round++) {
      startDrain('force');
      await settle();
      if (queue.length === 0) break;
    }
    if (queue.length > 0) {
      logger.error(
        { rows: queue.length, spoolDir },
        'audit flush left rows in memory: database and spool failing',
      );
    }
  }

  function close(): Promise<void> {
    closed ??= (async () => {
      state = 'closing';
      clearInterval(replayTimer);
      await flush();
      // A running replay stops at its next batch; what it did not reach stays sealed for the next start.
      await replaying;
      await flush();
      clearFlushTimer();
      state = 'closed';
      if (queue.length > 0) {
        const rows = queue;
        queue = [];
        spoolNow(rows);
      }
      // A write that still comes goes to the active file: the lease is kept until the process exits
      // (a writer opened on this directory by this same process takes it over at once).
      spool.retire();
    })();
    return closed;
  }

  return {
    write,
    flush,
    close,
    stats: () => ({ queued: queue.length + rowsInFlight, ...counts, spoolBytes: spool.bytes() }),
    auditBlocked,
  };
}

function requireInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`createAuditWriter: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}

const stderrLogger: AuditLogger = {
  warn: (o, m) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: m, ...o })}\n`),
  error: (o, m) => process.stderr.write(`${JSON.stringify({ level: 'error', msg: m, ...o })}\n`),
};
