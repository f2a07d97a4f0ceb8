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
  const sameMs = now === headMs;
  if (!sameMs) {
    headMs = now;
    let time = now;
    head = '';
    for (let i = 0; i < 10; i++) {
      head = CROCKFORD[time % 32] + head;
      time = Math.floor(time / 32);
    }
  }
  // Within one millisecond the random part counts up from the first id's (as monotonic ULIDs
  // do), so ids made in order sort in order: audit listings break created_at ties by id.
  if (sameMs && lastTail !== '') {
    lastTail = incrementBase32(lastTail);
    return `${prefix}_${head}${lastTail}`;
  }
  if (randomPoolOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  let tail = '';
  for (let i = randomPoolOffset; i < randomPoolOffset + ID_RANDOM_CHARS; i++)
    tail += CROCKFORD[randomPool[i]! % 32];
  randomPoolOffset += ID_RANDOM_CHARS;
  lastTail = tail;
  return `${prefix}_${head}${tail}`;
}

let lastTail = '';

/** The next base32 string of the same length (the random part has 80 bits: it never runs out). */
function incrementBase32(text: string): string {
  let i = text.length - 1;
  while (i >= 0 && text[i] === 'z') i--;
  if (i < 0) return text;
  return text.slice(0, i) + CROCKFORD[CROCKFORD.indexOf(text[i]!) + 1] + '0'.repeat(text.length - i - 1);
}

/** A bearer credential: prefix + 32 random bytes base64url. Only its hash is stored. */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}
