import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../client/index.ts';
import { canonicalQuery, canonicalString, sha256Hex } from './canonical.ts';
import { startVerifyingServer, type VerifyingServer } from './test-server.ts';
import vectorFile from './test-vectors.json' with { type: 'json' };
import { parseSignatureHeaders, verifyPartnerSignature } from './verify.ts';

type Vector = (typeof vectorFile.vectors)[number];
const vectors: Vector[] = vectorFile.vectors;
const urlOf = (base: string, v: Vector) => `${base}${v.path}${v.rawQuery ? `?${v.rawQuery}` : ''}`;
const headersOf = (v: Vector) => ({
  'X-Api-Key': v.keyId,
  'X-Timestamp': v.timestamp,
  'X-Nonce': v.nonce,
  'X-Signature': v.expected.signature,
});

describe.each(vectors.map((v) => [v.name, v] as const))('test vector: %s', (_, vector) => {
  it('the gateway computes the canonical string and accepts the signature', () => {
    expect(canonicalQuery(vector.rawQuery)).toBe(vector.expected.canonicalQuery);
    expect(sha256Hex(vector.body)).toBe(vector.expected.bodySha256);
    const headers = parseSignatureHeaders(new Headers(headersOf(vector)), {
      nowSeconds: Number(vector.timestamp),
    });
    const canonical = canonicalString({
      method: vector.method,
      path: vector.path,
      rawQuery: vector.rawQuery,
      keyId: headers.keyId,
      timestamp: headers.timestamp,
      nonce: headers.nonce,
      bodySha256Hex: sha256Hex(vector.body),
    });
    expect(canonical).toBe(vector.expected.canonicalString);
    const secrets = [
      { version: 7, secret: 'a-retired-secret' },
      { version: 8, secret: vector.secret },
    ];
    expect(verifyPartnerSignature({ canonical, signatureHex: headers.signatureHex, secrets })).toEqual({
      matchedVersion: 8,
    });
  });

  it('the client produces the signature', () => {
    const signed = signRequest({
      keyId: vector.keyId,
      secret: vector.secret,
      method: vector.method,
      url: urlOf('https://gateway.example', vector),
      body: vector.body,
      timestamp: Number(vector.timestamp),
      nonce: vector.nonce,
    });
    expect(signed).toEqual(headersOf(vector));
  });
});

describe('test vectors over HTTP', () => {
  let clock = 0;
  let server: VerifyingServer;
  beforeAll(async () => {
    server = await startVerifyingServer({
      secrets: [{ version: 1, secret: vectors[0]!.secret }],
      nowSeconds: () => clock,
    });
  });
  afterAll(() => server.close());

  it.each(vectors.map((v) => [v.name, v] as const))(
    'node:http and the verifier accept "%s"',
    async (_, vector) => {
      clock = Number(vector.timestamp);
      const response = await fetch(urlOf(server.url, vector), {
        method: vector.method,
        headers: headersOf(vector),
        body: vector.body || undefined,
      });
      expect(await response.json()).toEqual({ verified: true, matchedVersion: 1 });
    },
  );
});

describe('README fragment', () => {
  const readme = readFileSync(new URL('./README-fragment.md', import.meta.url), 'utf8');

  it('lists every vector with its query, canonical query and signature', () => {
    // Cells are trimmed: the formatter pads the table's columns.
    const rows = readme
      .split('\n')
      .filter((line) => /^\|\s*\d+\s*\|/.test(line))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    expect(rows).toHaveLength(vectors.length);
    const code = (text: string) => (text === '' ? '(empty)' : `\`${text}\``);
    for (const [i, vector] of vectors.entries()) {
      const [, , request, query, body, timestamp, nonce, canonical, signature] = rows[i]!;
      expect(request).toBe(`\`${vector.method} ${vector.path}\``);
      expect(query).toBe(code(vector.rawQuery));
      expect(body).toBe(code(vector.body));
      expect(timestamp).toBe(vector.timestamp);
      expect(nonce).toBe(`\`${vector.nonce}\``);
      expect(canonical).toBe(code(vector.expected.canonicalQuery));
      expect(signature).toBe(`\`${vector.expected.signature}\``);
    }
    expect(readme).toContain(`key id \`${vectors[0]!.keyId}\` and secret \`${vectors[0]!.secret}\``);
  });

  const hasTools = ['bash', 'openssl', 'curl'].every(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0,
  );

  describe.skipIf(!hasTools)('curl + openssl recipe', () => {
    const script = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    let dir: string;
    let server: VerifyingServer;
    let clock: number | undefined;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kg-recipe-'));
      writeFileSync(join(dir, 'kg-curl.sh'), script);
      server = await startVerifyingServer({
        secrets: [{ version: 1, secret: vectors[0]!.secret }],
        nowSeconds: () => clock ?? Math.floor(Date.now() / 1000),
      });
    });
    afterAll(async () => {
      rmSync(dir, { recursive: true, force: true });
      await server.close();
    });

    // Asynchronously: the verifying server runs in this process and must keep answering.
    const runRecipe = async (env: Record<string, string>) => {
      const { stdout } = await promisify(execFile)('bash', [join(dir, 'kg-curl.sh')], {
        env: { PATH: process.env.PATH ?? '', GATEWAY: server.url, ...env },
        encoding: 'utf8',
        timeout: 10_000,
      });
      return stdout;
    };

    // The recipe sends the query as given, so it reproduces the vectors whose query is canonical.
    it.each(vectors.filter((v) => v.rawQuery === v.expected.canonicalQuery).map((v) => [v.name, v] as const))(
      'reproduces the signature of "%s"',
      async (_, vector) => {
        clock = Number(vector.timestamp);
        const output = await runRecipe({
          KEY_ID: vector.keyId,
          SECRET: vector.secret,
          METHOD: vector.method,
          REQ_PATH: vector.path,
          QUERY: vector.rawQuery,
          BODY: vector.body,
          TIMESTAMP: vector.timestamp,
          NONCE: vector.nonce,
        });
        expect(JSON.parse(output)).toEqual({ verified: true, matchedVersion: 1 });
        expect(server.verified.at(-1)).toMatchObject({
          signatureHex: vector.expected.signature,
          canonical: vector.expected.canonicalString,
          body: vector.body,
        });
      },
    );

    it('signs a live request with the current time and a fresh nonce', async () => {
      clock = undefined;
      const output = await runRecipe({
        KEY_ID: vectors[0]!.keyId,
        SECRET: vectors[0]!.secret,
        METHOD: 'PUT',
        REQ_PATH: '/v1/orders/42',
        QUERY: 'a=1&b=%2B',
        BODY: '{"status": "shipped"}',
      });
      expect(JSON.parse(output)).toEqual({ verified: true, matchedVersion: 1 });
      expect(server.verified.at(-1)).toMatchObject({
        target: '/v1/orders/42?a=1&b=%2B',
        contentType: 'application/json',
      });
    });
  });
});
