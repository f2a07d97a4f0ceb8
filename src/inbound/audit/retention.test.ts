import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../../../test/helpers/db.ts';
import { toDbTime } from '../../storage/db.ts';
import { insertAuditRows } from './insert.ts';
import { deleteAuditRowsBefore, startAuditRetention } from './retention.ts';
import { sampleRow, waitFor } from './test-fixtures.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

describe.each(DIALECTS)('audit retention on %s', (dialect) => {
  let t: TestDatabase;
  const logged: Array<{ msg: string; details: object }> = [];
  const logger = {
    info: (details: object, msg: string) => logged.push({ msg, details }),
    warn: (details: object, msg: string) => logged.push({ msg, details }),
  };
  const storedIds = async () =>
    (await t.db.selectFrom('audit_log').select('request_id').orderBy('request_id').execute()).map(
      (r) => r.request_id,
    );

  beforeAll(async () => {
    t = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await t.drop();
  });
  beforeEach(async () => {
    logged.length = 0;
    await t.db.deleteFrom('audit_log').execute();
    // Five rows from 31 to 35 days ago, three from the last 29 days; one a millisecond inside 30 days.
    const rows = [31, 32, 33, 34, 35].map((days, i) =>
      sampleRow(`old-${i}`, { created_at: toDbTime(NOW - days * DAY_MS) }),
    );
    rows.push(sampleRow('new-0', { created_at: toDbTime(NOW - 30 * DAY_MS + 1) }));
    rows.push(sampleRow('new-1', { created_at: toDbTime(NOW - DAY_MS) }));
    rows.push(sampleRow('new-2', { created_at: toDbTime(NOW) }));
    await insertAuditRows(t.db, rows);
  });

  it('deletes at most a batch of the rows older than the cutoff, oldest first', async () => {
    const cutoff = toDbTime(NOW - 30 * DAY_MS);
    expect(await deleteAuditRowsBefore(t.db, cutoff, 2)).toBe(2);
    // The two oldest (35 and 34 days) went first.
    expect(await storedIds()).toEqual(['new-0', 'new-1', 'new-2', 'old-0', 'old-1', 'old-2']);
    expect(await deleteAuditRowsBefore(t.db, cutoff, 2)).toBe(2);
    expect(await deleteAuditRowsBefore(t.db, cutoff, 2)).toBe(1);
    expect(await deleteAuditRowsBefore(t.db, cutoff, 2)).toBe(0);
    expect(await storedIds()).toEqual(['new-0', 'new-1', 'new-2']);
  });

  it('a run deletes every row past the retention period, batch after batch, and logs how many', async () => {
    const retention = startAuditRetention({
      db: t.db,
      retentionDays: 30,
      logger,
      batchSize: 2,
      firstDelayMs: 60_000,
      now: () => NOW,
    });
    try {
      expect(await retention.runNow()).toBe(5);
      expect(await storedIds()).toEqual(['new-0', 'new-1', 'new-2']);
      expect(logged).toEqual([
        {
          msg: 'audit retention: old rows deleted',
          details: { deleted: 5, olderThan: toDbTime(NOW - 30 * DAY_MS) },
        },
      ]);
      // Nothing left to delete: no log line.
      expect(await retention.runNow()).toBe(0);
      expect(logged).toHaveLength(1);
    } finally {
      await retention.stop();
    }
  });

  it('runs on its own timer until stopped', async () => {
    const retention = startAuditRetention({
      db: t.db,
      retentionDays: 30,
      logger,
      firstDelayMs: 0,
      intervalMs: 50,
      now: () => NOW,
    });
    try {
      await waitFor(async () => (await storedIds()).length === 3, 5000, 'the old rows to be deleted');
      await insertAuditRows(t.db, [sampleRow('old-late', { created_at: toDbTime(NOW - 40 * DAY_MS) })]);
      await waitFor(async () => !(await storedIds()).includes('old-late'), 5000, 'the next run');
    } finally {
      await retention.stop();
    }
    await insertAuditRows(t.db, [sampleRow('old-after-stop', { created_at: toDbTime(NOW - 40 * DAY_MS) })]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await storedIds()).toContain('old-after-stop');
  });

  it('refuses a retention period that is not a positive whole number of days', () => {
    for (const retentionDays of [0, -1, 1.5, Number.NaN]) {
      expect(() => startAuditRetention({ db: t.db, retentionDays, logger })).toThrow(RangeError);
    }
  });
});
