import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffLines, unifiedDiff } from './line-diff.ts';

describe('diffLines', () => {
  it('replays to both inputs, with line numbers that count each side', () => {
    const lines = fc.array(fc.constantFrom('a', 'b', 'c', 'd', ''), { maxLength: 30 });
    fc.assert(
      fc.property(lines, lines, (a, b) => {
        const d = diffLines(a, b);
        expect(d.filter((l) => l.op !== 'add').map((l) => l.text)).toEqual(a);
        expect(d.filter((l) => l.op !== 'remove').map((l) => l.text)).toEqual(b);
        expect(d.filter((l) => l.op !== 'add').map((l) => l.oldLine)).toEqual(a.map((_, i) => i + 1));
        expect(d.filter((l) => l.op !== 'remove').map((l) => l.newLine)).toEqual(b.map((_, i) => i + 1));
      }),
    );
  });

  it('is minimal on a one-line change', () => {
    const d = diffLines(['x', 'y', 'z'], ['x', 'Y', 'z']);
    expect(d.filter((l) => l.op !== 'equal')).toHaveLength(2);
  });
});

describe('unifiedDiff', () => {
  it('renders hunks with context and headers like diff -u', () => {
    const a = 'a b c d e f g h i j k l m n'.split(' ');
    const b = 'a b X d e f g h i j k Y m n Z'.split(' ');
    expect(unifiedDiff(diffLines(a, b), { from: 'p@1', to: 'p@2' }, 2)).toBe(
      [
        '--- p@1',
        '+++ p@2',
        '@@ -1,5 +1,5 @@',
        ' a',
        ' b',
        '-c',
        '+X',
        ' d',
        ' e',
        '@@ -10,5 +10,6 @@',
        ' j',
        ' k',
        '-l',
        '+Y',
        ' m',
        ' n',
        '+Z',
        '',
      ].join('\n'),
    );
    expect(unifiedDiff(diffLines(['same'], ['same']), { from: 'a', to: 'b' })).toBe('');
  });
});
