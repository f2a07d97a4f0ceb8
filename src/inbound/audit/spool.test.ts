/** The spool directory's permissions: private when keygate makes it, left alone when it exists. */
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACTIVE_SPOOL_FILE, openSpool } from './spool.ts';

describe('audit spool directory', () => {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const scratch = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-mode-'));
    made.push(dir);
    return dir;
  };

  it('creates a missing directory (and its parents) with mode 0700, and files with 0600', async () => {
    const dir = path.join(scratch(), 'a', 'spool');
    const spool = openSpool(dir);
    await spool.append([{ request_id: 'r1' }]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dir, ACTIVE_SPOOL_FILE)).mode & 0o777).toBe(0o600);
  });

  it('leaves the mode of a directory that already exists (a shared one such as /tmp)', async () => {
    const dir = scratch();
    chmodSync(dir, 0o1777);
    const spool = openSpool(dir);
    await spool.append([{ request_id: 'r1' }]);
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
    expect(statSync(path.join(dir, ACTIVE_SPOOL_FILE)).mode & 0o777).toBe(0o600);
  });
});
