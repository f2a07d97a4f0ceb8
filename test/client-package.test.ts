/**
 * `keygate/client` as a partner gets it: compiled to plain JavaScript (what `npm pack` ships via
 * prepack) and run by node without type stripping, it must reproduce the published test vectors.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const vectors = JSON.parse(
  readFileSync(path.join(root, 'src/inbound/signature/test-vectors.json'), 'utf8'),
) as {
  vectors: Array<{
    keyId: string;
    secret: string;
    method: string;
    path: string;
    rawQuery: string;
    timestamp: string;
    nonce: string;
    body: string;
    expected: { signature: string };
  }>;
};

describe('the published partner SDK', { timeout: 120_000 }, () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'keygate-client-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('compiles to JavaScript that signs every test vector exactly', () => {
    execFileSync(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.client.json', '--outDir', out],
      {
        cwd: root,
      },
    );
    const script = `
      import { signRequest } from ${JSON.stringify(path.join(out, 'client/index.js'))};
      const vectors = JSON.parse(process.argv[1]);
      const sigs = vectors.map((v) => signRequest({
        keyId: v.keyId, secret: v.secret, method: v.method,
        url: 'https://gw.example' + v.path + (v.rawQuery ? '?' + v.rawQuery : ''),
        body: v.body || undefined, timestamp: v.timestamp, nonce: v.nonce,
      })['X-Signature']);
      console.log(JSON.stringify(sigs));`;
    const stdout = execFileSync(
      process.execPath,
      ['--no-experimental-strip-types', '--input-type=module', '-e', script, JSON.stringify(vectors.vectors)],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(stdout)).toEqual(vectors.vectors.map((v) => v.expected.signature));
  });
});
