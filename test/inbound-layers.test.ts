/**
 * The inbound process faces the internet and must carry nothing of the outbound proxy or the admin
 * API: no module the inbound listener loads at run time lives in src/outbound or src/admin.
 * (Type-only imports are erased by Node's type stripping, so they load nothing.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');

/** Relative imports that survive type stripping (not `import type`, not `export type`). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(
    /^\s*(import|export)\s+(type\s+)?([^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]/gm,
  )) {
    if (m[2]) continue;
    found.push(path.resolve(path.dirname(file), m[4]!));
  }
  return found;
}

function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file) || !file.endsWith('.ts')) continue;
    seen.add(file);
    queue.push(...runtimeImports(file));
  }
  return seen;
}

describe('the inbound listener', () => {
  it('loads nothing of src/outbound or src/admin', () => {
    const modules = reachable(path.join(SRC, 'server/inbound-listener.ts'));
    expect(modules.size).toBeGreaterThan(10);
    const rel = [...modules].map((m) => path.relative(SRC, m));
    expect(rel).toContain('inbound/pipeline.ts');
    expect(rel.filter((m) => m.startsWith('outbound/') || m.startsWith('admin/'))).toEqual([]);
  });

  it('src/inbound imports neither src/outbound, src/admin nor src/server', () => {
    const modules = reachable(path.join(SRC, 'inbound/pipeline.ts'));
    const rel = [...modules].map((m) => path.relative(SRC, m));
    expect(rel.filter((m) => /^(outbound|admin|server)\//.test(m))).toEqual([]);
  });
});
