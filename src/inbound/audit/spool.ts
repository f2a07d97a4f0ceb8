/**
 * The audit spool: append-only JSON-lines files that hold audit rows while the database cannot
 * take them. A spool directory belongs to one writer (one process); give each process its own.
 *
 *   audit-spool.jsonl                       the active file: batches are appended, then fsync'd
 *   audit-spool.<ms>-<seq>.replay.jsonl     sealed files waiting for replay, oldest name first
 *   audit-rejected.jsonl                    lines the database refused for their content (or that
 *                                           do not parse); kept for an operator, never replayed
 *
 * Every line is one audit row as a JSON object. Replay seals the active file (a rename) before it
 * reads anything, so rows spooled while a replay runs land in a fresh active file and are never
 * deleted with the file being replayed.
 */
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
  readSync,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const ACTIVE_SPOOL_FILE = 'audit-spool.jsonl';
export const REJECTED_FILE = 'audit-rejected.jsonl';
const SEALED_PATTERN = /^audit-spool\.\d+-\d+\.replay\.jsonl$/;

/** The spool directory cannot be used (not a directory, not writable): start-up should stop. */
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
}

/**
 * Opens a spool directory, creating it with mode 0700 if it is missing. A directory that already
 * exists keeps its mode (it may be shared, even /tmp): the files in it are 0600 either way.
 * Synchronous: called once at start-up. Throws SpoolDirError when the directory is unusable, so a
 * wrong setting stops start-up instead of failing the first append during an outage.
 */
export function openSpool(dir: string): Spool & { hasRowsSync(): boolean } {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new SpoolDirError(`cannot use it as the audit spool directory: ${(err as Error).message}`);
  }
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
  };
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
