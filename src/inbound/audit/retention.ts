/**
 * Audit retention (`KEYGATE_AUDIT_RETENTION_DAYS`, off by default): every inbound node deletes the
 * audit rows older than the retention period, a batch at a time, every few minutes. Deleting is
 * idempotent, so nodes need not agree on who does it; a random first delay keeps nodes started
 * together from deleting at the same moment. A failed run (MySQL down) is logged and tried again
 * at the next interval: the rows wait, nothing else does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteAdapter } from 'kysely';
import { summarizeError } from '../../logger.ts';
import { type Db, toDbTime } from '../../storage/db.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface AuditRetentionLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface AuditRetentionOptions {
  db: Db;
  /** Rows whose created_at is older than this many days are deleted; must be positive. */
  retentionDays: number;
  logger: AuditRetentionLogger;
  /** Between two runs; default 10 minutes. */
  intervalMs?: number;
  /** Before the first run; default a random delay up to one minute. */
  firstDelayMs?: number;
  /** Rows per DELETE statement; default 1,000, so no statement holds locks for long. */
  batchSize?: number;
  now?: () => number;
}

export interface AuditRetention {
  /** One run now: deletes every row older than the period, batch by batch; answers how many. */
  runNow(): Promise<number>;
  /** Stops the timer and waits for a run in progress to finish its current batch. */
  stop(): Promise<void>;
}

export function startAuditRetention(options: AuditRetentionOptions): AuditRetention {
  const { db, retentionDays, logger, now = Date.now } = options;
  const intervalMs = options.intervalMs ?? 10 * 60 * 1000;
  const batchSize = options.batchSize ?? 1000;
  if (!(Number.isInteger(retentionDays) && retentionDays > 0)) {
    throw new RangeError(`retentionDays must be a positive integer, got ${retentionDays}`);
  }
  let stopped = false;
  let running: Promise<number> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function run(): Promise<number> {
    const cutoff = toDbTime(now() - retentionDays * DAY_MS);
    let deleted = 0;
    for (;;) {
      const count = await deleteAuditRowsBefore(db, cutoff, batchSize);
      deleted += count;
      if (count < batchSize || stopped) break;
      // Let the inserts of the audit writer in between.
      await sleep(10);
    }
    if (deleted > 0) logger.info({ deleted, olderThan: cutoff }, 'audit retention: old rows deleted');
    return deleted;
  }

  function runNow(): Promise<number> {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      runNow()
        .catch((err: unknown) => {
          logger.warn(
            { err: summarizeError(err) },
            'audit retention: deleting old rows failed; trying again at the next interval',
          );
        })
        .finally(() => schedule(intervalMs));
    }, delayMs);
    timer.unref();
  }
  schedule(options.firstDelayMs ?? Math.floor(Math.random() * 60_000));

  return {
    runNow,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => {});
    },
  };
}

/** Deletes up to `limit` audit rows created before `cutoff` (storage time text), oldest first. */
export async function deleteAuditRowsBefore(db: Db, cutoff: string, limit: number): Promise<number> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) {
    // SQLite has no DELETE ... LIMIT unless built for it.
    const result = await db
      .deleteFrom('audit_log')
      .where('request_id', 'in', (eb) =>
        eb
          .selectFrom('audit_log')
          .select('request_id')
          .where('created_at', '<', cutoff)
          .orderBy('created_at')
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
  // MySQL cannot delete from a table it selects from in a subquery; ORDER BY + LIMIT walks the
  // time index instead.
  const result = await db
    .deleteFrom('audit_log')
    .where('created_at', '<', cutoff)
    .orderBy('created_at')
    .limit(limit)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
