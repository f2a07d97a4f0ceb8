/** Identifiers and credential helpers shared by every feature. */
import { createHash, randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A time-sortable id: `<prefix>_` + 10 chars of millisecond time + 16 random chars (Crockford
 * base32). Sorting ids sorts by creation time, so audit tables need no autoincrement column.
 */
export function newId(prefix: string): string {
  let time = Date.now();
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = CROCKFORD[time % 32] + head;
    time = Math.floor(time / 32);
  }
  const bytes = randomBytes(16);
  let tail = '';
  for (const b of bytes) tail += CROCKFORD[b % 32];
  return `${prefix}_${head}${tail}`;
}

/** A bearer credential: prefix + 32 random bytes base64url. Only its hash is stored. */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
