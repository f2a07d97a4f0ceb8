/**
 * The audit spool: append-only JSON-lines files that hold audit rows while the database cannot
 * take them. A spool directory belongs to one writer (one process); give each process its own.
 *
 *   audit-spool.jsonl                       the active file: batches are appended, then fsync'd
 *   audit-spool.<ms>-<seq>.replay.jsonl     sealed files waiting for replay, oldest name first
 *   audit-rejected.jsonl                    lines the database refused for their content (or that
 *                                           do not parse); kept for an operator, never replayed
 *   audit-writer.lease                      who holds the directory (host, pid), renewed every
 *                                           leaseRefreshMs while it runs, removed on close
 *
 * Two processes on one directory would lose rows (one seals the active file while the other
 * appends to it, then deletes what it replayed), so openSpool refuses a directory whose lease is
 * live. Node has no flock: a lease not renewed for LEASE_STALE_PERIODS periods, or one left on this
 * host by a process that is gone, is taken over, so a crashed process never blocks its successor.
 *
 * Every line is one audit row as a JSON object. Replay seals the active file (a rename) before it
 * reads anything, so rows spooled while a replay runs land in a fresh active file and are never
 * deleted with the file being replayed.
 */

import { randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const ACTIVE_SPOOL_FILE = 'audit-spool.jsonl';
export const REJECTED_FILE = 'audit-rejected.jsonl';
export const LEASE_FILE = 'audit-writer.lease';
/** A lease not renewed for this many of its holder's periods is stale: the holder is gone. */
export const LEASE_STALE_PERIODS = 6;
const SEALED_PATTERN = /^audit-spool\.\d+-\d+\.replay\.jsonl$/;

/** The spool directory cannot be used (not a directory, not writable, held by another process). */
export class SpoolDirError extends Error {
  override name = 'SpoolDirError';
}

export interface Spool {
  readonly dir: string;
  /** Appends the rows and fsyncs; resolves only once they are on disk. */
  append(rows: readonly object[]): Promise<void>;
  /** Synchronous append + fsync, for the rare write that arrives after the writer closed. */
  appendSync(rows: readonly object[]): void;
  /** Seals the active file (if it holds anything) and lists every sealed file, oldest first. */
  seal(): Promise<string[]>;
  readLines(file: string): AsyncGenerator<string>;
  remove(file: string): Promise<void>;
  /** Appends raw lines to the rejected file. */
  reject(lines: readonly string[]): Promise<void>;
  /** True when a previous run (or this one) left rows on disk. */
  isEmpty(): Promise<boolean>;
  /** Gives the directory up (removes the lease if it is still this spool's). */
  release(): void;
}

export interface SpoolOptions {
  /** How often the lease is renewed; another process takes it over after LEASE_STALE_PERIODS of these. */
  leaseRefreshMs?: number;
  /** Called once if another process took the lease over (this one stalled past the stale limit). */
  onLeaseLost?: (holder: string) => void;
}

/**
 * Opens a spool directory, creating it with mode 0700 if it is missing. A directory that already
 * exists keeps its mode (it may be shared, even /tmp): the files in it are 0600 either way.
 * Synchronous: called once at start-up. Throws SpoolDirError when the directory is unusable, so a
 * wrong setting stops start-up instead of failing the first append during an outage.
 */
export function openSpool(
  dir: string,
  { leaseRefreshMs = 5_000, onLeaseLost = () => {} }: SpoolOptions = {},
): Spool & { hasRowsSync(): boolean } {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new SpoolDirError(`cannot use it as the audit spool directory: ${(err as Error).message}`);
  }
  const lease = acquireLease(dir, leaseRefreshMs, onLeaseLost);
  const activeFile = path.join(dir, ACTIVE_SPOOL_FILE);
  let sealCounter = 0;

  // File operations run one at a time, so a rename never races an append.
  let chain: Promise<unknown> = Promise.resolve();
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn, fn);
    chain = run.catch(() => {});
    return run;
  }

  return {
    dir,
    append: (rows) => serialized(() => appendDurably(dir, activeFile, toLines(rows))),
    appendSync: (rows) => appendDurablySync(activeFile, toLines(rows)),
    seal: () =>
      serialized(async () => {
        const size = await fileSize(activeFile);
        if (size !== undefined && size > 0) {
          sealCounter += 1;
          const name = `audit-spool.${Date.now()}-${String(sealCounter).padStart(6, '0')}.replay.jsonl`;
          await rename(activeFile, path.join(dir, name));
          await syncDirectory(dir);
        } else if (size === 0) {
          await unlink(activeFile).catch(ignoreMissing);
        }
        return (await readdir(dir))
          .filter((name) => SEALED_PATTERN.test(name))
          .sort(compareSealedNames)
          .map((name) => path.join(dir, name));
      }),
    readLines,
    remove: (file) => unlink(file).catch(ignoreMissing),
    reject: (lines) => serialized(() => appendDurably(dir, path.join(dir, REJECTED_FILE), joinLines(lines))),
    isEmpty: () =>
      serialized(async () => {
        if (((await fileSize(activeFile)) ?? 0) > 0) return false;
        return !(await readdir(dir)).some((name) => SEALED_PATTERN.test(name));
      }),
    hasRowsSync: () =>
      readdirSync(dir).some((name) => name === ACTIVE_SPOOL_FILE || SEALED_PATTERN.test(name)),
    release: () => lease.release(),
  };
}

interface LeaseHolder {
  host: string;
  pid: number;
  token: string;
  refreshMs: number;
  since: string;
}

/**
 * Takes the directory's lease, or throws SpoolDirError naming the live holder. Taking over a
 * stale lease happens under a mkdir lock, so two successors cannot both take it.
 */
function acquireLease(dir: string, refreshMs: number, onLost: (holder: string) => void) {
  const file = path.join(dir, LEASE_FILE);
  const me: LeaseHolder = {
    host: os.hostname(),
    pid: process.pid,
    token: randomUUID(),
    refreshMs,
    since: new Date().toISOString(),
  };
  const text = `${JSON.stringify(me)}\n`;
  if (!createExclusively(file, text)) {
    refuseIfLive(file, refreshMs);
    const lock = `${file}.takeover`;
    try {
      mkdirSync(lock);
    } catch (err) {
      throw new SpoolDirError(
        `another keygate is taking it over right now (${(err as Error).message}; remove ${lock} if none is)`,
      );
    }
    try {
      refuseIfLive(file, refreshMs);
      unlinkSync(file);
      if (!createExclusively(file, text)) refuseIfLive(file, refreshMs);
    } finally {
      rmdirSync(lock);
    }
  }

  let lost = false;
  const renew = async () => {
    try {
      const holder = parseLease(await readFile(file, 'utf8'));
      if (holder?.token !== me.token) {
        if (!lost) onLost(holder ? describeHolder(holder) : 'unknown');
        lost = true;
        return;
      }
      const now = new Date();
      await utimes(file, now, now);
    } catch (err) {
      // A missing lease is a lost one; a disk error is tried again at the next renewal.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !lost) {
        lost = true;
        onLost('nobody (the lease file was removed)');
      }
    }
  };
  const timer = setInterval(() => void renew(), refreshMs);
  timer.unref();
  return {
    release(): void {
      clearInterval(timer);
      try {
        if (parseLease(readFileSync(file, 'utf8'))?.token === me.token) unlinkSync(file);
      } catch {
        // Gone already, or the disk fails: a lease nobody renews goes stale on its own.
      }
    },
  };
}

/** Creates the lease file only if there is none; false when one exists. */
function createExclusively(file: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SpoolDirError(`cannot use it as the audit spool directory: ${(err as Error).message}`);
  }
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Throws SpoolDirError when the lease in `file` belongs to a process that may still be running. */
function refuseIfLive(file: string, ownRefreshMs: number): void {
  let text: string;
  let ageMs: number;
  try {
    ageMs = Date.now() - statSync(file).mtimeMs;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SpoolDirError(`cannot read its lease: ${(err as Error).message}`);
  }
  const holder = parseLease(text);
  const staleAfterMs = LEASE_STALE_PERIODS * (holder?.refreshMs ?? ownRefreshMs);
  if (ageMs > staleAfterMs || (holder !== undefined && holderIsGone(holder))) return;
  throw new SpoolDirError(
    `in use by ${holder ? describeHolder(holder) : 'another process'} (lease renewed ${Math.round(ageMs / 1000)} s ago): ` +
      'give each inbound process its own directory. A lease not renewed for ' +
      `${Math.ceil(staleAfterMs / 1000)} s is taken over, so a crashed process does not block its successor`,
  );
}

/** A lease left on this host by a process that is no longer running (a crash, or this container's previous run). */
function holderIsGone(holder: LeaseHolder): boolean {
  if (holder.host !== os.hostname()) return false;
  if (holder.pid === process.pid) {
    // Our own pid (pid 1 in a restarted container): gone if it took the lease before we started.
    return Date.parse(holder.since) < Date.now() - process.uptime() * 1000;
  }
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function parseLease(text: string): LeaseHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LeaseHolder>;
    const valid =
      typeof value.host === 'string' &&
      typeof value.pid === 'number' &&
      typeof value.token === 'string' &&
      typeof value.refreshMs === 'number' &&
      typeof value.since === 'string';
    return valid ? (value as LeaseHolder) : undefined;
  } catch {
    return undefined;
  }
}

function describeHolder(holder: LeaseHolder): string {
  return `keygate on host ${holder.host}, pid ${holder.pid}, since ${holder.since}`;
}

function toLines(rows: readonly object[]): string {
  return joinLines(rows.map((row) => JSON.stringify(row)));
}

function joinLines(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** `<ms>-<seq>` sorts numerically, so a longer timestamp never sorts before a shorter one. */
function compareSealedNames(a: string, b: string): number {
  const key = (name: string) => name.split('.')[1]!.split('-').map(Number) as [number, number];
  const [am, as] = key(a);
  const [bm, bs] = key(b);
  return am - bm || as - bs;
}

async function appendDurably(dir: string, file: string, text: string): Promise<void> {
  if (text === '') return;
  // a+ rather than a: the last byte is read back to check for a torn line.
  const fh = await open(file, 'a+', 0o600);
  let sizeBefore = 0;
  try {
    sizeBefore = (await fh.stat()).size;
    // A crash can leave a torn last line; start on a fresh line so it does not swallow ours.
    const prefix = sizeBefore > 0 && !(await endsWithNewline(fh, sizeBefore)) ? '\n' : '';
    try {
      await fh.writeFile(prefix + text);
      await fh.sync();
    } catch (err) {
      // Leave no half-written batch behind: the caller keeps the rows and tries again.
      await fh.truncate(sizeBefore).catch(() => {});
      throw err;
    }
  } finally {
    await fh.close();
  }
  // A new file's directory entry must be durable too, not only its contents.
  if (sizeBefore === 0) await syncDirectory(dir);
}

function appendDurablySync(file: string, text: string): void {
  if (text === '') return;
  const fd = openSync(file, 'a+', 0o600);
  try {
    const size = fstatSync(fd).size;
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
    writeFileSync(fd, prefix + text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function endsWithNewline(fh: FileHandle, size: number): Promise<boolean> {
  const last = Buffer.alloc(1);
  await fh.read(last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    ignoreMissing(err);
    return undefined;
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

async function* readLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of lines) yield line;
  } finally {
    lines.close();
    input.destroy();
  }
}
