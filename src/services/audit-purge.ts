/**
 * Deleting old inbound audit rows on demand (`keygate audit purge`), gateway-wide: what
 * `KEYGATE_AUDIT_RETENTION_DAYS` does on a timer, for an operator who keeps rows by default and
 * wants a clear-out now, or a shorter period once. The purge itself is an admin change and is
 * recorded in admin_audit.
 */
import { KeygateError } from '../errors.ts';
import { deleteAuditRowsBefore } from '../inbound/audit/retention.ts';
import { toDbTime } from '../storage/db.ts';
import { type Actor, authorize } from './actor.ts';
import { recordAdminAudit } from './admin-audit.ts';
import type { ServiceContext } from './context.ts';

/** Rows per DELETE, as the retention timer deletes them: no statement holds locks for long. */
const BATCH = 1000;

export async function purgeAuditLog(
  ctx: ServiceContext,
  actor: Actor,
  input: { olderThanSeconds: number; now?: number },
): Promise<{ deleted: number; olderThan: string }> {
  authorize(actor, 'audit.purge', null);
  if (!(Number.isSafeInteger(input.olderThanSeconds) && input.olderThanSeconds >= 1)) {
    throw new KeygateError('KG_VALIDATION_FAILED', 'the age must be at least 1 s', {
      errors: [{ path: 'olderThan', message: 'at least 1 s' }],
    });
  }
  const cutoff = (input.now ?? Date.now()) - input.olderThanSeconds * 1000;
  const olderThan = new Date(cutoff).toISOString();
  let deleted = 0;
  for (;;) {
    const count = await deleteAuditRowsBefore(ctx.db, toDbTime(cutoff), BATCH);
    deleted += count;
    if (count < BATCH) break;
  }
  await recordAdminAudit(ctx.db, actor, {
    tenantId: null,
    action: 'audit.purge',
    targetType: 'audit_log',
    targetId: olderThan,
    after: { deleted, olderThan },
  });
  return { deleted, olderThan };
}
