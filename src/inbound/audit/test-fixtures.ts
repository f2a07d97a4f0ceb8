/** Shared by the audit writer's tests (and the crash fixture): sample rows, a recording logger, polling. */
import { readdirSync, readFileSync } from 'node:fs';
import { toDbTime } from '../../storage/db.ts';
import type { NewAuditLogRow } from '../../storage/schema.ts';
import type { AuditLogger } from './index.ts';

/** Marks bodies in sample rows, so a test can prove no row content reaches a log line. */
export const BODY_MARKER = 'BODY-CONTENT-MUST-NOT-BE-LOGGED';

export function sampleRow(requestId: string, overrides: Partial<NewAuditLogRow> = {}): NewAuditLogRow {
  return {
    request_id: requestId,
    tenant_id: 'ten_audit',
    key_id: 'key_audit',
    secret_version: 1,
    client_ip: '203.0.113.7',
    method: 'POST',
    path: '/orders',
    query: 'a=1',
    request_headers: '{"x-api-key":"key_audit","x-signature":"[REDACTED]"}',
    request_body: `{"note":"${BODY_MARKER}","text":"héllo 😀"}`,
    request_body_truncated: 0,
    response_status: 200,
    response_headers: '{}',
    response_body: BODY_MARKER,
    response_body_truncated: 0,
    latency_ms: 3,
    outcome: 'ok',
    created_at: toDbTime(),
    ...overrides,
  };
}

export interface RecordingLogger extends AuditLogger {
  records: { level: 'warn' | 'error'; msg: string; obj: object }[];
  text(): string;
}

export function recordingLogger(): RecordingLogger {
  const records: RecordingLogger['records'] = [];
  return {
    records,
    warn: (obj, msg) => records.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => records.push({ level: 'error', msg, obj }),
    text: () => JSON.stringify(records),
  };
}

export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Spool and sealed files (not the rejected file) left in a spool directory. */
export function spoolFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('audit-spool'));
}

export function readJsonLines(file: string): unknown[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);
}

export function spoolLine(row: NewAuditLogRow): string {
  return `${JSON.stringify(row)}\n`;
}
