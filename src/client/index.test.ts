import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalString, sha256Hex } from '../inbound/signature/canonical.ts';
import { startVerifyingServer, type VerifyingServer } from '../inbound/signature/test-server.ts';
import { createSignedFetch, signRequest } from './index.ts';

const KEY_ID = 'pk_client_test';
const OLD_SECRET = 'old-secret-value';
const NEW_SECRET = 'new-secret-value';

let server: VerifyingServer;
beforeAll(async () => {
  server = await startVerifyingServer({
    secrets: [
      { version: 1, secret: OLD_SECRET },
      { version: 2, secret: NEW_SECRET },
    ],
  });
});
afterAll(() => server.close());

const signedFetch = (secret = NEW_SECRET) => createSignedFetch({ keyId: KEY_ID, secret });

async function expectVerified(response: Response, matchedVersion = 2) {
  expect({ status: response.status, body: await response.json() }).toEqual({
    status: 200,
    body: { verified: true, matchedVersion },
  });
}

describe('createSignedFetch against the gateway verifier', () => {
  it('signs a GET whose query needs canonicalising', async () => {
    await expectVerified(await signedFetch()(`${server.url}/v1/search?z=1&q=a+b&p=%2F&t=%7E&name=中&flag&&`));
    expect(server.verified.at(-1)?.target).toBe('/v1/search?z=1&q=a+b&p=%2F&t=%7E&name=%E4%B8%AD&flag&&');
  });

  it('reports the secret that matched during a rotation', async () => {
    await expectVerified(await signedFetch(OLD_SECRET)(`${server.url}/v1/orders`), 1);
  });

  it.each([
    ['a string', () => JSON.stringify({ sku: 'A-1', name: '中文' }), 'text/plain;charset=UTF-8'],
    ['bytes', () => new Uint8Array([0, 1, 2, 255]), undefined],
    [
      'URLSearchParams',
      () => new URLSearchParams({ a: '1', b: 'x y' }),
      'application/x-www-form-urlencoded;charset=UTF-8',
    ],
    ['a Blob', () => new Blob(['blob body'], { type: 'text/csv' }), 'text/csv'],
    ['FormData', () => formData(), 'multipart/form-data; boundary='],
  ] as Array<[string, () => NonNullable<RequestInit['body']>, string | undefined]>)(
    'signs %s body as sent',
    async (_, body, contentType) => {
      await expectVerified(await signedFetch()(`${server.url}/v1/upload`, { method: 'POST', body: body() }));
      const last = server.verified.at(-1);
      if (contentType === undefined) expect(last?.contentType).toBeUndefined();
      else expect(last?.contentType?.startsWith(contentType)).toBe(true);
    },
  );

  it('signs a Request object with a body, and a lower-case method fetch would not upper-case', async () => {
    const request = new Request(`${server.url}/v1/orders/1`, { method: 'patch', body: '{"status":"paid"}' });
    await expectVerified(await signedFetch()(request));
    expect(server.verified.at(-1)).toMatchObject({ method: 'PATCH', body: '{"status":"paid"}' });
  });

  it('keeps the caller headers', async () => {
    const response = await signedFetch()(`${server.url}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    await expectVerified(response);
    expect(server.verified.at(-1)?.contentType).toBe('application/json');
  });

  it('a wrong secret gets 401 with the hash of the same canonical string the client signed', async () => {
    const url = `${server.url}/v1/orders?b=2&a=1`;
    const headers = signRequest({ keyId: KEY_ID, secret: 'wrong', method: 'GET', url });
    const response = await fetch(url, { headers });
    expect(response.status).toBe(401);
    const problem = (await response.json()) as Record<string, unknown>;
    const clientCanonical = canonicalString({
      method: 'GET',
      path: '/v1/orders',
      rawQuery: 'b=2&a=1',
      keyId: KEY_ID,
      timestamp: headers['X-Timestamp']!,
      nonce: headers['X-Nonce']!,
      bodySha256Hex: sha256Hex(''),
    });
    expect(problem).toMatchObject({
      code: 'KG_SIGNATURE_MISMATCH',
      canonicalSha256: sha256Hex(clientCanonical),
    });
    expect(JSON.stringify(problem)).not.toContain(NEW_SECRET);
  });

  it('signs any query and body so that the verifier agrees', async () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(text, text), { maxLength: 6 }),
        fc.constantFrom('GET', 'DELETE', 'POST', 'PUT', 'PATCH'),
        text,
        async (pairs, method, body) => {
          const query = pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&');
          const withBody = method !== 'GET' && method !== 'DELETE';
          const response = await signedFetch()(`${server.url}/v1/p?${query}`, {
            method,
            body: withBody ? body : undefined,
          });
          await expectVerified(response);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('signRequest', () => {
  it('makes a fresh valid nonce and the current timestamp by default', () => {
    const first = signRequest({
      keyId: KEY_ID,
      secret: NEW_SECRET,
      method: 'GET',
      url: 'https://x.example/',
    });
    const second = signRequest({
      keyId: KEY_ID,
      secret: NEW_SECRET,
      method: 'GET',
      url: 'https://x.example/',
    });
    expect(first['X-Nonce']).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    expect(first['X-Nonce']).not.toBe(second['X-Nonce']);
    expect(Math.abs(Number(first['X-Timestamp']) - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe('client module', () => {
  it('imports nothing of the server beyond the shared canonicalisation and the error type', () => {
    const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const [, specifier] of source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)) {
        if (specifier === undefined) continue;
        if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
        else external.add(specifier);
      }
    };
    visit(resolve(srcDir, 'client/index.ts'));
    expect([...seen].map((file) => file.slice(srcDir.length + 1)).sort()).toEqual([
      'client/index.ts',
      'errors.ts',
      'inbound/signature/canonical.ts',
    ]);
    expect([...external]).toEqual(['node:crypto']);
  });
});

function formData(): FormData {
  const form = new FormData();
  form.append('field', 'value');
  form.append('file', new Blob(['file content'], { type: 'text/plain' }), 'a.txt');
  return form;
}
