import { describe, expect, it } from 'vitest';
import { newId } from './ids.ts';

describe('newId', () => {
  it('sorts in the order the ids were made, within a millisecond too, and never repeats', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => newId(i % 2 ? 'req' : 'aud'));
    const sortable = ids.map((id) => id.slice(4));
    for (let i = 1; i < sortable.length; i++) {
      expect(sortable[i]! > sortable[i - 1]!, `${ids[i - 1]} then ${ids[i]}`).toBe(true);
    }
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^(req|aud)_[0-9a-hjkmnp-tv-z]{26}$/);
  });
});
