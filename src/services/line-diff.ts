/** A line diff (Myers' O(ND) algorithm) and its unified-diff rendering, for comparing config versions. */

export interface DiffLine {
  op: 'equal' | 'add' | 'remove';
  text: string;
  /** 1-based line in the old text (equal / remove). */
  oldLine?: number;
  /** 1-based line in the new text (equal / add). */
  newLine?: number;
}

/** The shortest edit script turning `a` into `b`, as a list of lines. */
export function diffLines(a: readonly string[], b: readonly string[]): DiffLine[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!)
          ? v[offset + k + 1]!
          : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  // Walk the trace backwards to recover the edit script.
  const out: DiffLine[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const vd = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && vd[offset + k - 1]! < vd[offset + k + 1]!) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : vd[offset + prevK]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ op: 'equal', text: a[x - 1]!, oldLine: x, newLine: y });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === prevX) out.push({ op: 'add', text: b[y - 1]!, newLine: y });
      else out.push({ op: 'remove', text: a[x - 1]!, oldLine: x });
    }
    x = prevX;
    y = prevY;
  }
  return out.reverse();
}

/** `diff -u` style text with `context` lines around each change; empty when nothing changed. */
export function unifiedDiff(
  lines: readonly DiffLine[],
  labels: { from: string; to: string },
  context = 3,
): string {
  const changed = lines.map((l) => l.op !== 'equal');
  if (!changed.includes(true)) return '';
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  let i = 0;
  while (i < lines.length) {
    if (!changed[i]) {
      i++;
      continue;
    }
    const start = Math.max(0, i - context);
    let end = i;
    // Extend the hunk while the next change is within 2*context lines.
    for (;;) {
      while (end < lines.length && changed[end]) end++;
      let next = end;
      while (next < lines.length && !changed[next] && next - end < 2 * context) next++;
      if (next < lines.length && changed[next]) end = next;
      else break;
    }
    const stop = Math.min(lines.length, end + context);
    const hunk = lines.slice(start, stop);
    const oldStart = firstLine(lines, start, 'oldLine');
    const newStart = firstLine(lines, start, 'newLine');
    const oldCount = hunk.filter((l) => l.op !== 'add').length;
    const newCount = hunk.filter((l) => l.op !== 'remove').length;
    out.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
    for (const l of hunk) out.push(`${l.op === 'equal' ? ' ' : l.op === 'add' ? '+' : '-'}${l.text}`);
    i = stop;
  }
  return `${out.join('\n')}\n`;
}

/** The line number a hunk starting at `index` begins at (for an empty side, the line before it). */
function firstLine(lines: readonly DiffLine[], index: number, side: 'oldLine' | 'newLine'): number {
  for (let j = index; j < lines.length; j++) {
    const n = lines[j]![side];
    if (n !== undefined) return n;
  }
  for (let j = index - 1; j >= 0; j--) {
    const n = lines[j]![side];
    if (n !== undefined) return n;
  }
  return 0;
}
