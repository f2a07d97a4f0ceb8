/** `keygate audit purge` as an operator runs it, against both dialects. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeygateInProcess } from '../../test/helpers/cli.ts';
import { createTestDatabase, DIALECTS, type TestDatabase } from '../../test/helpers/db.ts';
import { insertAuditRows } from '../inbound/audit/insert.ts';
import { sampleRow } from '../inbound/audit/test-fixtures.ts';
import { toDbTime } from '../storage/db.ts';
import { purgeAuditLog } from './audit-purge.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

describe.each(DIALECTS)('audit purge on %s', (dialect) => {
  let t: TestDatabase;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await createTestDatabase(dialect);
    env = { KEYGATE_DATA_DIR: t.dataDir, ...(t.databaseUrl ? { DATABASE_URL: t.databaseUrl } : {}) };
  });
  afterAll(async () => {
    await t.drop();
  });

  it('deletes the rows older than the age, across batches, keeps the rest, and is itself audited', async () => {
    const now = Date.now();
    const old = Array.from({ length: 1203 }, (_, i) =>
      sampleRow(`old-${String(i).padStart(4, '0')}`, { created_at: toDbTime(now - 40 * DAY_MS - i * 1000) }),
    );
    const recent = [sampleRow('recent-0', { created_at: toDbTime(now - 29 * DAY_MS) })];
    await insertAuditRows(t.db, [...old, ...recent]);

    const res = await runKeygateInProcess(['audit', 'purge', '--older-than', '30d', '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { deleted: number; olderThan: string };
    expect(out.deleted).toBe(1203);
    expect(out.olderThan).toBe(new Date(Date.parse(out.olderThan)).toISOString());
    const left = await t.db.selectFrom('audit_log').select('request_id').execute();
    expect(left.map((r) => r.request_id)).toEqual(['recent-0']);

    const entry = await t.db
      .selectFrom('admin_audit')
      .selectAll()
      .where('action', '=', 'audit.purge')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(entry.after_state!)).toEqual({ deleted: 1203, olderThan: out.olderThan });
    expect(JSON.parse(entry.actor)).toEqual({ kind: 'cli' });
  });

  it('is for gateway admins only, and names a bad age', async () => {
    const tenantAdmin = { kind: 'admin', tokenId: 'tok', role: 'tenant_admin', tenantId: 'ten_x' } as const;
    await expect(
      purgeAuditLog({ db: t.db } as never, tenantAdmin, { olderThanSeconds: 60 }),
    ).rejects.toMatchObject({ code: 'KG_FORBIDDEN' });
    const bad = await runKeygateInProcess(['audit', 'purge', '--older-than', 'a while'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid duration a while');
    const missing = await runKeygateInProcess(['audit', 'purge'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--older-than is required');
  });
});
