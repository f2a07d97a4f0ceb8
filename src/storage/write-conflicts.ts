/**
 * Admin writes that read, then insert (the next version number, a name not taken yet) race with
 * the same write on another connection. MySQL answers the loser with a duplicate key, or with a
 * deadlock when both hold gap locks; either way the transaction was rolled back and running it
 * again sees the winner's row. So such a transaction is retried a few times, and a conflict that
 * persists is a 409, never a 500.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { KeygateError } from '../errors.ts';
import type { Db } from './db.ts';

/** A unique index refused the row (MySQL ER_DUP_ENTRY, SQLite UNIQUE constraint). */
export function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  return e.code === 'ER_DUP_ENTRY' || e.errno === 1062 || /UNIQUE constraint failed/.test(String(e.message));
}

function isDeadlock(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown };
  return e.code === 'ER_LOCK_DEADLOCK' || e.errno === 1213;
}

const ATTEMPTS = 6;

/**
 * Runs `fn` in a transaction, again (after a short random pause) when it lost a race to a
 * concurrent write. `fn` must only touch the database: it may run more than once.
 */
export async function writeTransaction<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(fn);
    } catch (err) {
      if (!isDuplicateKey(err) && !isDeadlock(err)) throw err;
      if (attempt >= ATTEMPTS) {
        throw new KeygateError(
          'KG_CONFLICT',
          'a concurrent change conflicted with this one; try again',
          {},
          {
            cause: err,
          },
        );
      }
      await sleep(Math.random() * 10 * attempt);
    }
  }
}
