import { describe, expect, it } from 'vitest';
import { defineListing, pageOf, rowsToFetch, startAfter } from './paging.ts';

const NAMES = defineListing('names', 1, (r: { name: string }) => [r.name]);
const PAIRS = defineListing('pairs', 2, (r: { a: string; b: string }) => [r.a, r.b]);
const rows = (...names: string[]) => names.map((name) => ({ name }));

function cursorProblem(run: () => unknown) {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error('accepted');
}

describe('keyset pages', () => {
  it('reads one row more than the limit, and none without one (everything)', () => {
    expect(rowsToFetch({ limit: 3 })).toBe(4);
    expect(rowsToFetch({})).toBeUndefined();
  });

  it('makes a cursor from the last row when a row beyond the page was read, and reads it back', () => {
    const page = pageOf(NAMES, rows('a', 'b', 'c', 'd'), { limit: 3 });
    expect(page.items).toEqual(rows('a', 'b', 'c'));
    expect(page.nextCursor).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]+$/));
    expect(startAfter(NAMES, { cursor: page.nextCursor! })).toEqual(['c']);
  });

  it('has no next cursor on the last page, also when it is exactly full, nor without a limit', () => {
    expect(pageOf(NAMES, rows('a', 'b', 'c'), { limit: 3 }).nextCursor).toBeNull();
    expect(pageOf(NAMES, rows('a'), { limit: 3 }).nextCursor).toBeNull();
    expect(pageOf(NAMES, rows('a', 'b', 'c', 'd'), {})).toEqual({
      items: rows('a', 'b', 'c', 'd'),
      nextCursor: null,
    });
  });

  it('starts at the beginning without a cursor', () => {
    expect(startAfter(NAMES, {})).toBeUndefined();
  });

  it("refuses a malformed cursor, or another listing's, as a validation error on cursor", () => {
    const pairs = pageOf(
      PAIRS,
      [
        { a: 'x', b: 'y' },
        { a: 'z', b: 'w' },
      ],
      { limit: 1 },
    ).nextCursor!;
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const cursor of [
      '%%%',
      'not a cursor',
      encode({ names: 'a' }),
      encode(['names']),
      encode(['names', 'a', 'b']),
      encode(['names', 1]),
      encode(['a']), // an untagged key, as cursors were before they named their listing
      pairs,
    ]) {
      expect(
        cursorProblem(() => startAfter(NAMES, { cursor })),
        cursor,
      ).toMatchObject({
        code: 'KG_VALIDATION_FAILED',
        status: 400,
        extra: { errors: [{ path: 'cursor', message: 'not a cursor returned by this endpoint' }] },
      });
    }
  });

  it('refuses a limit that is not a positive integer', () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      expect(cursorProblem(() => rowsToFetch({ limit }))).toMatchObject({ code: 'KG_VALIDATION_FAILED' });
    }
  });
});
