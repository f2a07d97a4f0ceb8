import { CompiledQuery, Kysely, MysqlDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { CLI_ACTOR } from '../cli/context.ts';
import { insertAuditRows } from '../inbound/audit/insert.ts';
import { sampleRow } from '../inbound/audit/test-fixtures.ts';
import { mysqlPoolOf, toDbTime } from '../storage/db.ts';
import type { Database } from '../storage/schema.ts';
import { queryInboundAudit } from './audit-queries.ts';
import type { ServiceContext } from './context.ts';

/**
 * The inbound audit log grows by one row per partner call, so its listings must read a page from
 * an index, not sort the table: asked of MariaDB's planner with the statements the service runs.
 */
describe('inbound audit listing on MySQL', () => {
  let t: TestDatabase;
  let logged: Kysely<Database>;
  const statements: CompiledQuery[] = [];
  const start = Date.UTC(2026, 0, 1);

  beforeAll(async () => {
    t = await createTestDatabase('mysql');
    const rows = Array.from({ length: 5000 }, (_, i) =>
      sampleRow(`req_${String(i).padStart(6, '0')}`, {
        tenant_id: `ten_${i % 10}`,
        key_id: `pk_${i % 50}`,
        created_at: toDbTime(start + i * 1000),
      }),
    );
    await insertAuditRows(t.db, rows);
    await t.db.executeQuery(CompiledQuery.raw('analyze table audit_log'));
    logged = new Kysely<Database>({
      dialect: new MysqlDialect({ pool: mysqlPoolOf(t.db)! }),
      log: (event) => {
        if (event.level === 'query') statements.push(event.query);
      },
    });
  });
  afterAll(async () => {
    await t.drop();
  });

  /** Runs the listing through the service and returns MariaDB's plan for the statement it sent. */
  async function planOf(input: Parameters<typeof queryInboundAudit>[2]) {
    statements.length = 0;
    const ctx = { db: logged, dialect: 'mysql' } as unknown as ServiceContext;
    const page = await queryInboundAudit(ctx, CLI_ACTOR, input);
    const listing = statements.find((q) => q.sql.includes('from `audit_log`'))!;
    const plan = await t.db.executeQuery<{ key: string | null; Extra: string | null }>(
      CompiledQuery.raw(`explain ${listing.sql}`, [...listing.parameters]),
    );
    return { page, plan: plan.rows[0]! };
  }

  it.each([
    // The newest row of all is number 4999; of key pk_7 (every 50th from 7), number 4957.
    ['every tenant (a gateway admin)', undefined, 4999, 'audit_log_time'],
    ['one key', 'pk_7', 4957, 'audit_log_key_time'],
  ])('newest first for %s, from an index without sorting the table', async (_, keyId, newest, index) => {
    const { page, plan } = await planOf({ tenant: null, keyId, limit: 50 });
    expect(page.items).toHaveLength(50);
    expect(page.items[0]!.createdAt).toBe(new Date(start + newest * 1000).toISOString());
    expect(plan.key).toBe(index);
    expect(plan.Extra ?? '').not.toContain('filesort');
  });
});
