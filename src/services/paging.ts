/**
 * Keyset paging, shared by every listing: a page is read in the listing's stable, total order
 * (`where sort key > last key ... order by sort key limit n + 1`), so inserts and deletes between
 * pages never make a row repeat or go missing. The cursor is the sort key of the page's last row,
 * tagged with the listing that issued it; callers treat it as opaque.
 */
import { type ReferenceExpression, type SelectQueryBuilder, sql } from 'kysely';
import { KeygateError } from '../errors.ts';

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export interface PageRequest {
  /** Rows per page; left out, every row (the CLI lists everything). */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

/** A listing's cursor: its name (so a cursor from another listing is refused) and its sort key. */
export interface Listing<R, K extends readonly string[]> {
  name: string;
  arity: K['length'];
  keyOf(row: R): K;
}

export function defineListing<R, const K extends readonly string[]>(
  name: string,
  arity: K['length'],
  keyOf: (row: R) => K,
): Listing<R, K> {
  return { name, arity, keyOf };
}

/**
 * The sort key the requested page starts after, or undefined for the first page. A cursor that
 * does not decode, or was issued by another listing, is a 400 KG_VALIDATION_FAILED on `cursor`.
 */
export function startAfter<K extends readonly string[]>(
  listing: Listing<never, K>,
  page: PageRequest,
): K | undefined {
  if (page.cursor === undefined) return undefined;
  try {
    const parts: unknown = JSON.parse(Buffer.from(page.cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parts) &&
      parts.length === listing.arity + 1 &&
      parts[0] === listing.name &&
      parts.every((p) => typeof p === 'string')
    )
      return parts.slice(1) as unknown as K;
  } catch {
    // reported below
  }
  throw invalidCursor();
}

/**
 * The error for a cursor the listing did not issue; services also throw it for a key that decodes
 * but cannot be one of their rows (a version number that is not a number).
 */
export function invalidCursor(): KeygateError {
  const message = 'not a cursor returned by this endpoint';
  return new KeygateError('KG_VALIDATION_FAILED', `cursor: ${message}`, {
    errors: [{ path: 'cursor', message }],
  });
}

/** How many rows to read for the page: one more than the limit tells whether another page follows. */
export function rowsToFetch(page: PageRequest & { limit: number }): number;
export function rowsToFetch(page: PageRequest): number | undefined;
export function rowsToFetch(page: PageRequest): number | undefined {
  if (page.limit === undefined) return undefined;
  if (!Number.isInteger(page.limit) || page.limit < 1) {
    throw new KeygateError('KG_VALIDATION_FAILED', 'limit: must be a positive integer', {
      errors: [{ path: 'limit', message: 'must be a positive integer' }],
    });
  }
  return page.limit + 1;
}

/** The page made of `rows` (read with `rowsToFetch`), with the cursor after its last row. */
export function pageOf<R, K extends readonly string[]>(
  listing: Listing<NoInfer<R>, K>,
  rows: R[],
  page: PageRequest,
): Page<R> {
  if (page.limit === undefined || rows.length <= page.limit) return { items: rows, nextCursor: null };
  const items = rows.slice(0, page.limit);
  const last = items.at(-1) as R;
  return {
    items,
    nextCursor: Buffer.from(JSON.stringify([listing.name, ...listing.keyOf(last)])).toString('base64url'),
  };
}

/**
 * Reads the requested page of `query` in ascending order of the one column `column` that is the
 * listing's sort key: after the cursor's key, `rowsToFetch` rows, made into a page with `pageOf`.
 * The column must compare as bytes on MySQL too (a utf8mb4_bin column, see migration
 * 2026-11-24T0005), as SQLite compares, or the order and the pages differ per database.
 */
export async function readPage<DB, TB extends keyof DB, O>(
  listing: Listing<NoInfer<O>, readonly [string]>,
  query: SelectQueryBuilder<DB, TB, O>,
  column: ReferenceExpression<DB, TB> & string,
  page: PageRequest,
): Promise<Page<O>> {
  const after = startAfter(listing, page);
  const rows = await query
    .$if(after !== undefined, (q) => q.where(sql.ref<string>(column), '>', after![0]))
    .orderBy(column)
    .$if(page.limit !== undefined, (q) => q.limit(rowsToFetch(page)!))
    .execute();
  return pageOf(listing, rows, page);
}

/** The same page with each item converted (a row to its view). */
export function mapPage<R, T>(page: Page<R>, map: (row: R) => T): Page<T> {
  return { items: page.items.map(map), nextCursor: page.nextCursor };
}
