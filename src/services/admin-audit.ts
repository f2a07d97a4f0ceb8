/** Writes admin_audit rows, always inside the transaction of the change they record. */
import { newId } from '../ids.ts';
import { type Db, toDbTime } from '../storage/db.ts';
import type { AdminAuditRow } from '../storage/schema.ts';
import { type Actor, describeActor } from './actor.ts';

export interface AuditEntry {
  tenantId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  /** Secret-free snapshots; callers pass masked views, never values. */
  before?: unknown;
  after?: unknown;
}

export async function recordAdminAudit(trx: Db, actor: Actor, entry: AuditEntry): Promise<void> {
  await trx
    .insertInto('admin_audit')
    .values({
      id: newId('aud'),
      tenant_id: entry.tenantId,
      actor: describeActor(actor),
      action: entry.action,
      target_type: entry.targetType,
      target_id: entry.targetId,
      before_state: entry.before === undefined ? null : JSON.stringify(entry.before),
      after_state: entry.after === undefined ? null : JSON.stringify(entry.after),
      created_at: toDbTime(),
    })
    .execute();
}

export interface AdminAuditQuery {
  tenantId: string | null;
  action?: string;
  since?: string;
  until?: string;
  /** Exclusive cursor: the id of the last row of the previous page. */
  after?: string;
  limit: number;
}

export async function listAdminAudit(db: Db, q: AdminAuditQuery): Promise<AdminAuditRow[]> {
  let query = db.selectFrom('admin_audit').selectAll().orderBy('id', 'desc').limit(q.limit);
  if (q.tenantId !== null) query = query.where('tenant_id', '=', q.tenantId);
  if (q.action) query = query.where('action', '=', q.action);
  if (q.since) query = query.where('created_at', '>=', q.since);
  if (q.until) query = query.where('created_at', '<', q.until);
  if (q.after) query = query.where('id', '<', q.after);
  return query.execute();
}
