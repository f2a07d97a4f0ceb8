/** The spool directory: its permissions, and the lease that keeps it to one process. */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

describe('audit spool size', () => {
  const made: string[] = [];
  const open: { release(): void }[] = [];
  afterEach(() => {
    for (const spool of open.splice(0)) spool.release();
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const opened = (dir: string) => {
    const spool = openSpool(dir);
    open.push(spool);
    return spool;
  };
  /** What the spool's files hold on disk: active and sealed, not the rejected file. */
  const onDisk = (dir: string) =>
    readdirSync(dir)
      .filter((name) => name.startsWith('audit-spool'))
      .reduce((total, name) => total + statSync(path.join(dir, name)).size, 0);

  it('knows the size of its active and sealed files as it appends, seals and removes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-size-'));
    made.push(dir);
    // Left by an earlier process, torn: counted at start, and the newline put before the next row too.
    writeFileSync(path.join(dir, ACTIVE_SPOOL_FILE), '{"request_id":"torn"');
    const spool = opened(dir);
    expect(spool.bytes()).toBe(20);
    await spool.append([{ request_id: 'r1' }, { request_id: 'r2 é' }]);
    expect(spool.bytes()).toBe(onDisk(dir));
    spool.appendSync([{ request_id: 'r3' }]);
    expect(spool.bytes()).toBe(onDisk(dir));
    const [first] = await spool.seal();
    await spool.append([{ request_id: 'r4' }]);
    expect(spool.bytes()).toBe(onDisk(dir));
    const before = spool.bytes();
    await spool.remove(first!);
    expect(spool.bytes()).toBe(onDisk(dir));
    expect(spool.bytes()).toBeLessThan(before);
    // A sealed file it did not write (handed over by a process that lost the lease): counted at the next seal.
    writeFileSync(path.join(dir, 'audit-spool.1-900000001.replay.jsonl'), '{"request_id":"handed"}\n');
    await spool.seal();
    expect(spool.bytes()).toBe(onDisk(dir));
    for (const file of await spool.seal()) await spool.remove(file);
    expect(spool.bytes()).toBe(0);
    expect(onDisk(dir)).toBe(0);
  });
  it('reads lines with the exact byte offset past each, for CRLF, non-UTF-8 and torn lines', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-lines-'));
    made.push(dir);
    const file = path.join(dir, 'audit-spool.1-900000002.replay.jsonl');
    const parts = [
      Buffer.from('{"request_id":"a"}\n'),
      Buffer.from('{"request_id":"crlf"}\r\n'),
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), // bytes that are not UTF-8
      Buffer.from('\n'), // an empty line
      Buffer.from('{"request_id":"é"}\n'),
      Buffer.from('{"request_id":"torn'), // no newline: cut off mid-write
    ];
    writeFileSync(file, Buffer.concat(parts));
    const spool = opened(dir);
    const lines = [];
    for await (const line of spool.readLines(file)) lines.push(line);
    let end = 0;
    const ends = parts.map((part) => (end += part.length));
    expect(lines.map((l) => l.end)).toEqual(ends);
    expect(lines.map((l) => l.text)).toEqual([
      '{"request_id":"a"}',
      '{"request_id":"crlf"}',
      '{\ufffd\ufffd}',
      '',
      '{"request_id":"é"}',
      '{"request_id":"torn',
    ]);
    // Through the whole file, the replay counts nothing of it as left to replay.
    await spool.seal();
    spool.replayedThrough(file, lines.at(-1)!.end);
    expect(spool.bytes()).toBe(0);
  });

  it('reads a line split over many read chunks as one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keygate-spool-lines-'));
    made.push(dir);
    const file = path.join(dir, 'audit-spool.1-900000003.replay.jsonl');
    const long = `{"request_id":"${'x'.repeat(200_000)}"}`;
    writeFileSync(file, `${long}\n{"request_id":"b"}\n`);
    const spool = opened(dir);
    const lines = [];
    for await (const line of spool.readLines(file)) lines.push(line);
    expect(lines.map((l) => [l.text.length, l.end])).toEqual([
      [long.length, long.length + 1],
      [18, long.length + 20],
    ]);
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
    // (no wait: a synchronous wait would stop this same process's renewals)
    expect(() => opened(dir, { leaseRefreshMs: 50, leaseWaitMs: 0 })).toThrow(/in use by keygate/);
  });

  it("takes over another host's lease once it is stale, and not before", () => {
    const dir = scratch();
    const holder = { host: 'other-host', pid: 1, token: 't', refreshMs: 1000, since: '2026-01-01T00:00:00Z' };
    writeLease(dir, holder, 3000);
    expect(() => opened(dir, { leaseWaitMs: 0 })).toThrow(
      /in use by keygate on host other-host, pid 1, .*renewed 3 s ago.* 6 s is taken over/,
    );
    writeLease(dir, holder, 7000);
    opened(dir);
    expect(lease(dir).pid).toBe(process.pid);
  });

  it('takes over a lease left on this host by a process that is gone once it missed two renewals, waiting for that', () => {
    const dir = scratch();
    const gone = spawnSync(process.execPath, ['-e', '']).pid;
    writeLease(
      dir,
      { host: os.hostname(), pid: gone, token: 't', refreshMs: 200, since: '2026-01-01T00:00:00Z' },
      0,
    );
    const started = Date.now();
    opened(dir);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(1_000); // not the 6-period stale limit (1.2 s)
    expect(lease(dir).pid).toBe(process.pid);
  });

  it('does not take a live lease that names this host and our pid (another container, its own pid 1)', async () => {
    const dir = scratch();
    const beforeWeStarted = new Date(Date.now() - process.uptime() * 1000 - 60_000).toISOString();
    const holder = {
      host: os.hostname(),
      pid: process.pid,
      token: 't',
      refreshMs: 5000,
      since: beforeWeStarted,
    };
    writeLease(dir, holder, 0);
    expect(() => opened(dir, { leaseWaitMs: 0 })).toThrow(/in use by keygate on host/);
    // Renewed by its holder all along: refused after the wait too.
    const renewing = { ...holder, refreshMs: 50 };
    writeLease(dir, renewing, 0);
    const child = spawn(process.execPath, [
      '-e',
      `setInterval(() => { const t = new Date(); require('fs').utimesSync(${JSON.stringify(path.join(dir, LEASE_FILE))}, t, t); }, 20)`,
    ]);
    try {
      await sleep(200);
      expect(() => opened(dir, { leaseWaitMs: 400 })).toThrow(/in use by keygate on host/);
    } finally {
      child.kill();
    }
  });

  it('removes a takeover lock left by a takeover that died half-way, and refuses while a fresh one is held', () => {
    const dir = scratch();
    const holder = { host: 'other-host', pid: 1, token: 't', refreshMs: 100, since: '2026-01-01T00:00:00Z' };
    writeLease(dir, holder, 60_000);
    const lock = path.join(dir, `${LEASE_FILE}.takeover`);
    mkdirSync(lock);
    expect(() => opened(dir, { leaseWaitMs: 300 })).toThrow(/another keygate is taking it over right now/);
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(lock, anHourAgo, anHourAgo);
    opened(dir, { leaseWaitMs: 0 });
    expect(lease(dir).pid).toBe(process.pid);
    expect(existsSync(lock)).toBe(false);
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

  it('once the lease is lost, neither seals nor removes, and spools into files of its own', async () => {
    const dir = scratch();
    const spool = opened(dir, { leaseRefreshMs: 60_000 });
    await spool.append([{ request_id: 'before' }]);
    const sealed = await spool.seal();
    expect(sealed).toHaveLength(1);
    // Another process took the directory over and appends to the active file.
    writeLease(
      dir,
      { host: 'other-host', pid: 7, token: 'other', refreshMs: 5000, since: '2026-01-01T00:00:00Z' },
      0,
    );
    writeFileSync(path.join(dir, ACTIVE_SPOOL_FILE), '{"request_id":"theirs"}\n');
    expect(await spool.seal()).toEqual([]);
    await spool.remove(sealed[0]!);
    expect(existsSync(sealed[0]!)).toBe(true);
    expect(readFileSync(path.join(dir, ACTIVE_SPOOL_FILE), 'utf8')).toBe('{"request_id":"theirs"}\n');
    await spool.append([{ request_id: 'late-1' }]);
    spool.appendSync([{ request_id: 'late-2' }]);
    expect(readFileSync(path.join(dir, ACTIVE_SPOOL_FILE), 'utf8')).toBe('{"request_id":"theirs"}\n');
    const own = readdirSync(dir).filter(
      (f) => /^audit-spool\.\d+-\d+\.replay\.jsonl$/.test(f) && f !== path.basename(sealed[0]!),
    );
    expect(own.map((f) => readFileSync(path.join(dir, f), 'utf8')).sort()).toEqual([
      '{"request_id":"late-1"}\n',
      '{"request_id":"late-2"}\n',
    ]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('tells its writer when a renewal fails for another reason than a lost lease', async () => {
    const dir = scratch();
    const errors: string[] = [];
    opened(dir, {
      leaseRefreshMs: 20,
      onLeaseRenewError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? ''),
    });
    rmSync(path.join(dir, LEASE_FILE));
    mkdirSync(path.join(dir, LEASE_FILE)); // reading it fails with EISDIR
    await sleep(100);
    rmdirSync(path.join(dir, LEASE_FILE));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toBe('EISDIR');
  });

  it('keeps the lease of a retired spool until the process exits, for late appends', async () => {
    const dir = scratch();
    const spoolTs = fileURLToPath(new URL('./spool.ts', import.meta.url));
    const script = `import { openSpool } from ${JSON.stringify(spoolTs)};
      import { existsSync } from 'node:fs';
      const spool = openSpool(${JSON.stringify(dir)});
      spool.retire();
      spool.appendSync([{ request_id: 'late' }]);
      process.stdout.write(String(existsSync(${JSON.stringify(path.join(dir, LEASE_FILE))})));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('true');
    expect(existsSync(path.join(dir, LEASE_FILE))).toBe(false);
    // Within one process a spool opened on the same directory takes a retired lease over at once.
    const first = opened(dir);
    first.retire();
    opened(dir, { leaseWaitMs: 0 });
  });
});
