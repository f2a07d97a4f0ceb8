/**
 * The audit spool: append-only JSON-lines files that hold audit rows while the database cannot
 * take them. A spool directory belongs to one writer (one process); give each process its own.
 *
 *   audit-spool.jsonl                       the active file: batches are appended, then fsync'd
 *   audit-spool.<ms>-<seq>.replay.jsonl     sealed files waiting for replay, oldest name first
 *   audit-rejected.jsonl                    lines the database refused for their content (or that
 *                                           do not parse); kept for an operator, never replayed
 *   audit-writer.lease                      who holds the directory (host, pid), renewed every
 *                                           leaseRefreshMs, removed when the process exits
 *
 * Two processes on one directory would lose rows (one seals the active file while the other
 * appends to it, then deletes what it replayed), so openSpool refuses a directory whose lease is
 * live. Node has no flock: a lease not renewed for LEASE_STALE_PERIODS periods, or one left on this
 * host by a process that is gone and not renewed for GONE_MISSED_PERIODS periods, is taken over, so
 * a crashed process never blocks its successor. A spool that lost its lease leaves the directory's
 * files to the new holder (see openSpool).
 *
 * Every line is one audit row as a JSON object. Replay seals the active file (a rename) before it
 * reads anything, so rows spooled while a replay runs land in a fresh active file and are never
 * deleted with the file being replayed.
 *
 * The spool keeps, in memory, how many bytes of rows it still has to replay (bytes()), so the
 * inbound path can check it on every call without touching the disk: the active and sealed files,
 * less what the replay has already inserted from a sealed file it is still working through
 * (replayedThrough). It counts appends and removals as they happen; each seal counts the files on
 * disk again, which picks up files it did not write (handed over by a process that lost the lease).
 * A sealed file stays on disk until the replay is through with it, so the disk can hold up to that
 * file's replayed part more than bytes(). A spool that lost its lease has nothing to replay any more
 * (the files are the new holder's, who counts them): bytes() is 0.
 */

import { randomUUID } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  fsyncSync,
  linkSync,
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
import {
  type FileHandle,
  link,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
  utimes,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

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

/** One line of a spool file: its text, and the byte offset just past it in the file. */
export interface SpoolLine {
  text: string;
  end: number;
}

const LF = 0x0a;
const CR = 0x0d;

export interface Spool {
  readonly dir: string;
  /** Appends the rows and fsyncs; resolves only once they are on disk. */
  append(rows: readonly object[]): Promise<void>;
  /** Synchronous append + fsync, for the rare write that arrives after the writer closed. */
  appendSync(rows: readonly object[]): void;
  /** Seals the active file (if it holds anything) and lists every sealed file, oldest first. */
  seal(): Promise<string[]>;
  readLines(file: string): AsyncGenerator<SpoolLine>;
  remove(file: string): Promise<void>;
  /** Appends raw lines to the rejected file. */
  reject(lines: readonly string[]): Promise<void>;
  /** True when a previous run (or this one) left rows on disk. */
  isEmpty(): Promise<boolean>;
  /**
   * Records that the replay has inserted `file` (a sealed file) through its first `offset` bytes, so
   * bytes() no longer counts them. Called as each replayed batch commits.
   */
  replayedThrough(file: string, offset: number): void;
  /**
   * Bytes of rows still to replay: the active and sealed files (not the rejected file), less what
   * replayedThrough recorded; 0 once the lease is lost. Kept in memory, no disk access.
   */
  bytes(): number;
  /**
   * The writer has closed: the lease is kept (and renewed) until this process exits, so rows that
   * still come (appendSync) never land in a directory another process already took. A spool
   * opened on the same directory by this process takes it over at once.
   */
  retire(): void;
  /** Gives the directory up (removes the lease if it is still this spool's). */
  release(): void;
}

export interface SpoolOptions {
  /** How often the lease is renewed; another process takes it over after LEASE_STALE_PERIODS of these. */
  leaseRefreshMs?: number;
  /** Called once if another process took the lease over (this one stalled past the stale limit). */
  onLeaseLost?: (holder: string) => void;
  /** Called when a renewal fails for another reason than a lost lease (a disk error); tried again. */
  onLeaseRenewError?: (err: Error) => void;
  /** How long start-up waits for a lease that can still become takeable before it gives up. */
  leaseWaitMs?: number;
}

/**
 * Opens a spool directory, creating it with mode 0700 if it is missing. A directory that already
 * exists keeps its mode (it may be shared, even /tmp): the files in it are 0600 either way.
 * Synchronous: called once at start-up. Throws SpoolDirError when the directory is unusable, so a
 * wrong setting stops start-up instead of failing the first append during an outage.
 */
export function openSpool(
  dir: string,
  {
    leaseRefreshMs = 5_000,
    onLeaseLost = () => {},
    onLeaseRenewError = () => {},
    leaseWaitMs = 15_000,
  }: SpoolOptions = {},
): Spool & { hasRowsSync(): boolean } {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new SpoolDirError(`cannot use it as the audit spool directory: ${(err as Error).message}`);
  }
  const lease = acquireLease(dir, leaseRefreshMs, leaseWaitMs, onLeaseLost, onLeaseRenewError);
  const activeFile = path.join(dir, ACTIVE_SPOOL_FILE);
  let sealCounter = 0;
  /** Bytes in the active and sealed files, as appended, removed and counted at each seal. */
  let bytes = spoolFilesSizeSync(dir);
  /** Bytes of each sealed file already replayed, and their sum. */
  const replayed = new Map<string, number>();
  let replayedTotal = 0;
  const forget = (file: string) => {
    replayedTotal -= replayed.get(file) ?? 0;
    replayed.delete(file);
  };

  // File operations run one at a time, so a rename never races an append.
  let chain: Promise<unknown> = Promise.resolve();
  function serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn, fn);
    chain = run.catch(() => {});
    return run;
  }

  // Once another process holds the directory, the active file and the sealed files are its own:
  // this spool writes each batch as a whole sealed file of its own (the holder replays it), and
  // neither seals nor removes anything.
  const mineForAppend = () => lease.stillMine().catch(() => true);
  return {
    dir,
    append: (rows) =>
      serialized(async () => {
        // A file handed over is the new holder's: it counts it when it seals.
        if (await mineForAppend()) bytes += await appendDurably(dir, activeFile, toLines(rows));
        else await handOver(dir, toLines(rows));
      }),
    appendSync: (rows) => {
      if (lease.lost) handOverSync(dir, toLines(rows));
      else bytes += appendDurablySync(activeFile, toLines(rows));
    },
    seal: () =>
      serialized(async () => {
        if (!(await lease.stillMine())) return [];
        const size = await fileSize(activeFile);
        if (size !== undefined && size > 0) {
          sealCounter += 1;
          const name = `audit-spool.${Date.now()}-${String(sealCounter).padStart(6, '0')}.replay.jsonl`;
          await rename(activeFile, path.join(dir, name));
          await syncDirectory(dir);
        } else if (size === 0) {
          await unlink(activeFile).catch(ignoreMissing);
        }
        const sealed = (await readdir(dir))
          .filter((name) => SEALED_PATTERN.test(name))
          .sort(compareSealedNames)
          .map((name) => path.join(dir, name));
        // The active file is gone (renamed): the spool is the sealed files.
        let total = 0;
        for (const file of sealed) total += (await fileSize(file)) ?? 0;
        bytes = total;
        const present = new Set(sealed);
        for (const file of [...replayed.keys()]) if (!present.has(file)) forget(file);
        return sealed;
      }),
    readLines,
    remove: (file) =>
      serialized(async () => {
        if (!(await lease.stillMine())) return;
        const size = (await fileSize(file)) ?? 0;
        await unlink(file).catch(ignoreMissing);
        bytes = Math.max(0, bytes - size);
        forget(file);
      }),
    reject: (lines) =>
      serialized(async () => {
        await appendDurably(dir, path.join(dir, REJECTED_FILE), joinLines(lines));
      }),
    isEmpty: () =>
      serialized(async () => {
        if (((await fileSize(activeFile)) ?? 0) > 0) return false;
        return !(await readdir(dir)).some((name) => SEALED_PATTERN.test(name));
      }),
    replayedThrough: (file, offset) => {
      if (lease.lost) return;
      const before = replayed.get(file) ?? 0;
      if (offset <= before) return;
      replayed.set(file, offset);
      replayedTotal += offset - before;
    },
    // The files are the new holder's once the lease is lost: it counts them when it seals.
    bytes: () => (lease.lost ? 0 : Math.max(0, bytes - replayedTotal)),
    hasRowsSync: () =>
      readdirSync(dir).some((name) => name === ACTIVE_SPOOL_FILE || SEALED_PATTERN.test(name)),
    retire: () => lease.retire(),
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

/** The lease's view for the spool: whether it is still ours, and giving it up. */
interface Lease {
  /** True once another process took the directory over (noticed at a renewal or a check). */
  readonly lost: boolean;
  /** Reads the lease file: false (and lost from then on) if it is no longer this spool's. */
  stillMine(): Promise<boolean>;
  /** The writer has closed: keep the lease for late appends until this process exits. */
  retire(): void;
  release(): void;
}

/** A lease-holding lock directory older than this was left by a takeover that died half-way. */
const TAKEOVER_LOCK_STALE_MS = 5_000;
/** The same-host shortcut applies only to a lease that also missed this many renewals. */
const GONE_MISSED_PERIODS = 2;

/** Lease still held by this process for spools whose writer closed (token -> release). */
const retired = new Map<string, () => void>();
process.once('exit', () => {
  for (const release of [...retired.values()]) release();
});

/** Refusal because of a lease that may become takeable at `retryAt` (epoch ms). */
class LeaseBusyError extends SpoolDirError {
  readonly retryAt: number;
  constructor(message: string, retryAt: number) {
    super(message);
    this.retryAt = retryAt;
  }
}

/**
 * Takes the directory's lease, or throws SpoolDirError naming the live holder. A lease that can
 * become takeable within waitMs (its holder stops renewing it) is waited for, synchronously: this
 * runs once at start-up. Taking over a stale lease happens under a mkdir lock, so two successors
 * cannot both take it.
 */
function acquireLease(
  dir: string,
  refreshMs: number,
  waitMs: number,
  onLost: (holder: string) => void,
  onRenewError: (err: Error) => void,
): Lease {
  const file = path.join(dir, LEASE_FILE);
  const me: LeaseHolder = {
    host: os.hostname(),
    pid: process.pid,
    token: randomUUID(),
    refreshMs,
    since: new Date().toISOString(),
  };
  const text = `${JSON.stringify(me)}\n`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      tryTakeLease(file, text, refreshMs);
      break;
    } catch (err) {
      if (!(err instanceof LeaseBusyError) || err.retryAt > deadline) throw err;
      sleepSync(
        Math.min(Math.max(err.retryAt - Date.now(), 10), 1_000, Math.max(deadline - Date.now(), 0) + 1),
      );
    }
  }

  let lost = false;
  const markLost = (holder: string) => {
    if (lost) return;
    lost = true;
    onLost(holder);
  };
  const stillMine = async (): Promise<boolean> => {
    if (lost) return false;
    let holder: LeaseHolder | undefined;
    try {
      holder = parseLease(await readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        markLost('nobody (the lease file was removed)');
        return false;
      }
      throw err;
    }
    if (holder?.token !== me.token) {
      markLost(holder ? describeHolder(holder) : 'unknown');
      return false;
    }
    return true;
  };
  const renew = async () => {
    try {
      if (!(await stillMine())) {
        clearInterval(timer);
        return;
      }
      const now = new Date();
      await utimes(file, now, now);
    } catch (err) {
      // A disk error is tried again at the next renewal; the lease goes stale if it lasts.
      onRenewError(err as Error);
    }
  };
  const timer = setInterval(() => void renew(), refreshMs);
  timer.unref();
  const release = (): void => {
    clearInterval(timer);
    retired.delete(me.token);
    try {
      if (parseLease(readFileSync(file, 'utf8'))?.token === me.token) unlinkSync(file);
    } catch {
      // Gone already, or the disk fails: a lease nobody renews goes stale on its own.
    }
  };
  return {
    get lost() {
      return lost;
    },
    stillMine,
    retire: () => {
      // A successor in this same process takes it from `retired` at once (see tryTakeLease).
      if (!lost)
        retired.set(me.token, () => {
          lost = true;
          release();
        });
    },
    release,
  };
}

/** One attempt: returns holding the lease, or throws (LeaseBusyError when worth waiting for). */
function tryTakeLease(file: string, text: string, refreshMs: number): void {
  if (createExclusively(file, text)) return;
  // A writer of this process that has closed hands the lease over at once.
  const current = readLease(file);
  const handover = current && retired.get(current.token);
  if (handover) {
    handover();
    if (createExclusively(file, text)) return;
  }
  refuseIfLive(file, refreshMs);
  const lock = `${file}.takeover`;
  takeLock(lock);
  try {
    refuseIfLive(file, refreshMs);
    try {
      unlinkSync(file);
    } catch (err) {
      // Released by its holder meanwhile: nothing to remove.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SpoolDirError(`cannot take over its lease: ${(err as Error).message}`);
      }
    }
    if (!createExclusively(file, text)) {
      // Another process created a fresh lease between our unlink and create.
      refuseIfLive(file, refreshMs);
      throw new LeaseBusyError('another keygate took its lease at the same moment', Date.now());
    }
  } finally {
    try {
      rmdirSync(lock);
    } catch {
      // Removed as stale by another process (we held it over TAKEOVER_LOCK_STALE_MS): harmless.
    }
  }
}

/** The takeover lock: a directory. One left by a takeover that died half-way is removed once. */
function takeLock(lock: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SpoolDirError(`cannot lock its lease for a takeover: ${(err as Error).message}`);
      }
    }
    let ageMs = 0;
    try {
      ageMs = Date.now() - statSync(lock).mtimeMs;
    } catch {
      // Removed meanwhile: try again.
    }
    if (attempt === 0 && ageMs > TAKEOVER_LOCK_STALE_MS) {
      try {
        rmdirSync(lock);
      } catch {
        // Removed meanwhile by another successor: mkdir decides who goes on.
      }
      continue;
    }
    throw new LeaseBusyError(
      `another keygate is taking it over right now (remove ${lock} if none is)`,
      Date.now() + 100,
    );
  }
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

function readLease(file: string): LeaseHolder | undefined {
  try {
    return parseLease(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Throws SpoolDirError when the lease in `file` belongs to a process that may still be running. */
function refuseIfLive(file: string, ownRefreshMs: number): void {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SpoolDirError(`cannot read its lease: ${(err as Error).message}`);
  }
  const ageMs = Date.now() - mtimeMs;
  const holder = parseLease(text);
  const periodMs = holder?.refreshMs ?? ownRefreshMs;
  const staleAfterMs = LEASE_STALE_PERIODS * periodMs;
  // Host name + pid alone do not prove a holder gone: containers sharing a host name each have
  // their own pid 1. The shortcut also needs missed renewals; a live holder never misses two.
  const goneAfterMs =
    holder !== undefined && holderIsGone(holder) ? GONE_MISSED_PERIODS * periodMs : staleAfterMs;
  if (ageMs > goneAfterMs) return;
  throw new LeaseBusyError(
    `in use by ${holder ? describeHolder(holder) : 'another process'} (lease renewed ${Math.round(ageMs / 1000)} s ago): ` +
      'give each inbound process its own directory. A lease not renewed for ' +
      `${Math.ceil(staleAfterMs / 1000)} s is taken over, so a crashed process does not block its successor`,
    mtimeMs + goneAfterMs + 1,
  );
}

/** A lease that names a process on this host that is not running (a crash, or this container's previous run). */
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

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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

/** Appends `text` durably; returns the bytes the file grew by. */
async function appendDurably(dir: string, file: string, text: string): Promise<number> {
  if (text === '') return 0;
  // a+ rather than a: the last byte is read back to check for a torn line.
  const fh = await open(file, 'a+', 0o600);
  let sizeBefore = 0;
  let written = '';
  try {
    sizeBefore = (await fh.stat()).size;
    // A crash can leave a torn last line; start on a fresh line so it does not swallow ours.
    const prefix = sizeBefore > 0 && !(await endsWithNewline(fh, sizeBefore)) ? '\n' : '';
    written = prefix + text;
    try {
      await fh.writeFile(written);
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
  return Buffer.byteLength(written);
}

/** A sealed file no other name can take: written aside, then linked (link never overwrites). */
let handOverCounter = 0;
function handOverNames(dir: string): { tmp: string; sealed: () => string } {
  return {
    tmp: path.join(dir, `audit-handover.${randomUUID()}.tmp`),
    sealed: () => {
      handOverCounter += 1;
      // A sequence above what a holder reaches by sealing keeps the names apart.
      const seq = 900_000_000 + (process.pid % 1000) * 100_000 + (handOverCounter % 100_000);
      return path.join(dir, `audit-spool.${Date.now()}-${seq}.replay.jsonl`);
    },
  };
}

async function handOver(dir: string, text: string): Promise<void> {
  if (text === '') return;
  const { tmp, sealed } = handOverNames(dir);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    for (;;) {
      try {
        await link(tmp, sealed());
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  await syncDirectory(dir);
}

function handOverSync(dir: string, text: string): void {
  if (text === '') return;
  const { tmp, sealed } = handOverNames(dir);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (;;) {
      try {
        linkSync(tmp, sealed());
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Left behind: not a spool name, never replayed.
    }
  }
}

function appendDurablySync(file: string, text: string): number {
  if (text === '') return 0;
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
    return Buffer.byteLength(prefix + text);
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

/** The size of the active and sealed files in `dir`, once at start-up. */
function spoolFilesSizeSync(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    if (name !== ACTIVE_SPOOL_FILE && !SEALED_PATTERN.test(name)) continue;
    try {
      total += statSync(path.join(dir, name)).size;
    } catch {
      // Removed meanwhile: nothing to count.
    }
  }
  return total;
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

/**
 * The file's lines, each with the byte offset just past it (its newline included, when it has one),
 * so the replay counts exactly the bytes it is through: split on LF only, a CR before it dropped
 * from the text (a file edited on Windows), and a torn last line (no newline) ending at the file's
 * end. Bytes that are not UTF-8 do not shift the offsets.
 */
async function* readLines(file: string): AsyncGenerator<SpoolLine> {
  const input = createReadStream(file);
  let pending: Buffer[] = [];
  let offset = 0;
  const lineOf = (parts: Buffer[], newline: boolean): SpoolLine => {
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    offset += bytes.length + (newline ? 1 : 0);
    const textEnd = newline && bytes.at(-1) === CR ? bytes.length - 1 : bytes.length;
    return { text: bytes.toString('utf8', 0, textEnd), end: offset };
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let newline = chunk.indexOf(LF); newline !== -1; newline = chunk.indexOf(LF, start)) {
        pending.push(chunk.subarray(start, newline));
        yield lineOf(pending, true);
        pending = [];
        start = newline + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length > 0) yield lineOf(pending, false);
  } finally {
    input.destroy();
  }
}
