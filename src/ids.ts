/** Identifiers and credential helpers shared by every feature. */
import { hash, randomBytes, randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
const ID_RANDOM_CHARS = 16;

// Every proxied request gets an id: one randomFillSync per 256 ids instead of one per id (the
// same CSPRNG, as node:crypto's randomUUID pools its entropy), and the time part once per ms.
const randomPool = Buffer.alloc(ID_RANDOM_CHARS * 256);
let randomPoolOffset = randomPool.length;
let headMs = -1;
let head = '';

/**
 * A time-sortable id: `<prefix>_` + 10 chars of millisecond time + 16 random chars (Crockford
 * base32). Sorting ids sorts by creation time, so audit tables need no autoincrement column.
 */
export function newId(prefix: string): string {
  const now = Date.now();
  if (now !== headMs) {
    headMs = now;
    let time = now;
    head = '';
    for (let i = 0; i < 10; i++) {
      head = CROCKFORD[time % 32] + head;
      time = Math.floor(time / 32);
    }
  }
  if (randomPoolOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  let tail = '';
  for (let i = randomPoolOffset; i < randomPoolOffset + ID_RANDOM_CHARS; i++)
    tail += CROCKFORD[randomPool[i]! % 32];
  randomPoolOffset += ID_RANDOM_CHARS;
  return `${prefix}_${head}${tail}`;
}

/** A bearer credential: prefix + 32 random bytes base64url. Only its hash is stored. */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}
