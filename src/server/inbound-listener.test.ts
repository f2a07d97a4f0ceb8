/** The inbound listener's start-up checks: a spool directory it cannot use stops `serve`. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway } from '../../test/helpers/gateway.ts';
import { StartupError } from './startup-error.ts';

describe('inbound listener start-up', () => {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const scratch = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-inbound-start-'));
    made.push(dir);
    return dir;
  };

  it('stops with a start-up error naming KEYGATE_AUDIT_SPOOL_DIR when the spool directory is unusable', async () => {
    const file = path.join(scratch(), 'a-file');
    writeFileSync(file, '');
    const spoolDir = path.join(file, 'spool');
    const started = startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
    await expect(started).rejects.toThrow(StartupError);
    await expect(started).rejects.toThrow(
      `KEYGATE_AUDIT_SPOOL_DIR (${spoolDir}): cannot use it as the audit spool directory: ENOTDIR`,
    );
  });

  it('refuses to start a second inbound process on a spool directory the first one holds', async () => {
    const spoolDir = path.join(scratch(), 'spool');
    const first = await startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
    try {
      const second = startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
      await expect(second).rejects.toThrow(StartupError);
      await expect(second).rejects.toThrow(
        `KEYGATE_AUDIT_SPOOL_DIR (${spoolDir}): in use by keygate on host ${os.hostname()}, pid ${process.pid}`,
      );
    } finally {
      await first.close();
    }
    // A graceful stop gives the directory up at once.
    const next = await startTestGateway({ roles: ['inbound'], env: { KEYGATE_AUDIT_SPOOL_DIR: spoolDir } });
    await next.close();
  });
});
