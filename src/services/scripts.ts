/** Script tools for tenant developers: compile a script in the sandbox and report where it fails. */
import { isKeygateError } from '../errors.ts';
import { type Actor, authorize } from './actor.ts';
import type { ServiceContext } from './context.ts';
import { resolveTenantId } from './tenants.ts';

export type ScriptKind = 'request' | 'response';

export type ScriptValidation =
  | { valid: true; kind: ScriptKind }
  | {
      valid: false;
      kind: ScriptKind;
      error: { code: string; message: string; line: number | null; column: number | null };
    };

/**
 * Compiles `source` as a request or response script. A syntax error is an answer, not a failure:
 * it comes back with the line and column in the tenant's own text.
 */
export async function validateScript(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant: string; kind: ScriptKind; source: string },
): Promise<ScriptValidation> {
  const tenantId = await resolveTenantId(ctx.db, input.tenant);
  authorize(actor, 'script.test', tenantId);
  try {
    await ctx.sandbox.validate(input.kind, input.source);
    return { valid: true, kind: input.kind };
  } catch (err) {
    if (!isKeygateError(err) || err.code !== 'KG_SCRIPT_SYNTAX') throw err;
    const line = typeof err.extra.line === 'number' ? err.extra.line : null;
    const column = typeof err.extra.column === 'number' ? err.extra.column : null;
    return { valid: false, kind: input.kind, error: { code: err.code, message: err.message, line, column } };
  }
}
