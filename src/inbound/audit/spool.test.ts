/** The spool directory: its permissions, and the lease that keeps it to one process. */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACTIVE_SPOOL_FILE, LEASE_FILE, openSpool, SpoolDirError } from './spool.ts';
import { sleep } from './test-fixtures.ts';

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

describe('audit spool lease', () => {
  const made: string[] = [];
  const open: { release(): void }[] = [];
  afterEach(() => {
    for (const spool of open.splice(0)) spool.release();
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const scratch = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-lease-'));
    made.push(dir);
    return dir;
  };
  const opened = (...args: Parameters<typeof openSpool>) => {
    const spool = openSpool(...args);
    open.push(spool);
    return spool;
  };
  const writeLease = (dir: string, holder: object, ageMs: number) => {
    const file = path.join(dir, LEASE_FILE);
    writeFileSync(file, `${JSON.stringify(holder)}\n`);
    const then = new Date(Date.now() - ageMs);
    utimesSync(file, then, then);
  };
  const lease = (dir: string) =>
    JSON.parse(readFileSync(path.join(dir, LEASE_FILE), 'utf8')) as { pid: number };

  it('refuses a second writer on the directory while the first holds it, then lets it in', () => {
    const dir = scratch();
    const first = opened(dir);
    expect(lease(dir).pid).toBe(process.pid);
    expect(() => opened(dir)).toThrow(SpoolDirError);
    expect(() => opened(dir)).toThrow(
      new RegExp(
        `^in use by keygate on host ${os.hostname()}, pid ${process.pid}, since .*give each inbound process its own directory`,
      ),
    );
    first.release();
    expect(existsSync(path.join(dir, LEASE_FILE))).toBe(false);
    opened(dir);
  });

  it('renews the lease while it runs, so it never goes stale under a live writer', async () => {
    const dir = scratch();
    opened(dir, { leaseRefreshMs: 50 });
    await sleep(600); // twice the stale limit (6 x 50 ms)
    expect(() => opened(dir, { leaseRefreshMs: 50 })).toThrow(/in use by keygate/);
  });

  it("takes over another host's lease once it is stale, and not before", () => {
    const dir = scratch();
    const holder = { host: 'other-host', pid: 1, token: 't', refreshMs: 1000, since: '2026-01-01T00:00:00Z' };
    writeLease(dir, holder, 3000);
    expect(() => opened(dir)).toThrow(
      /in use by keygate on host other-host, pid 1, .*renewed 3 s ago.* 6 s is taken over/,
    );
    writeLease(dir, holder, 7000);
    opened(dir);
    expect(lease(dir).pid).toBe(process.pid);
  });

  it('takes over at once a lease left on this host by a process that is gone', () => {
    const dir = scratch();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    writeLease(
      dir,
      { host: os.hostname(), pid: gone, token: 't', refreshMs: 5000, since: '2026-01-01T00:00:00Z' },
      0,
    );
    opened(dir);
    expect(lease(dir).pid).toBe(process.pid);
  });

  it('tells its writer when another process took the lease over', async () => {
    const dir = scratch();
    const lost: string[] = [];
    opened(dir, { leaseRefreshMs: 20, onLeaseLost: (holder) => lost.push(holder) });
    writeLease(
      dir,
      { host: 'other-host', pid: 7, token: 'other', refreshMs: 20, since: '2026-01-01T00:00:00Z' },
      0,
    );
    await sleep(100);
    expect(lost).toEqual(['keygate on host other-host, pid 7, since 2026-01-01T00:00:00Z']);
  });
});
