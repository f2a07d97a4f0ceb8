/**
 * The sandbox as the outbound proxy uses it: the seed scripts unmodified on both paths, the
 * limits and recovery after them, the compile cache, and syntax checking.
 */
import { createCipheriv, createDecipheriv, generateKeyPairSync, hash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeygateError, KeygateError } from '../errors.ts';
import { type CompiledScript, createSandbox, type Sandbox, scriptLogsOf } from './index.ts';
import {
  jsonBody,
  requestInput,
  requestScript,
  responseScript,
  SECRETS,
  SEED_REQUEST,
  SEED_RESPONSE,
  testHost,
} from './test-support.ts';

let sandbox: Sandbox;

beforeAll(() => {
  sandbox = createSandbox({ cpuMs: 2000 });
});

afterAll(() => sandbox.dispose());

function aesCbc(text: string): string {
  const cipher = createCipheriv('aes-128-cbc', Buffer.from(SECRETS.AesKey), Buffer.from(SECRETS.AesIV));
  return Buffer.concat([cipher.update(text), cipher.final()]).toString('base64');
}

function aesCbcOpen(base64: string): string {
  const decipher = createDecipheriv('aes-128-cbc', Buffer.from(SECRETS.AesKey), Buffer.from(SECRETS.AesIV));
  return Buffer.concat([decipher.update(Buffer.from(base64, 'base64')), decipher.final()]).toString();
}

/** The seed's sign: sorted key=value pairs, then SHA-256, upper-case hex. */
function seedSign(fields: Record<string, unknown>): string {
  const signString = Object.keys(fields)
    .sort()
    .map((key) => `${key}=${fields[key]}`)
    .join('&');
  return hash('sha256', signString, 'hex').toUpperCase();
}

async function errorOf(promise: Promise<unknown>): Promise<KeygateError> {
  try {
    await promise;
  } catch (err) {
    if (isKeygateError(err)) return err;
    throw err;
  }
  throw new Error('expected the run to fail');
}

describe('seed request script', () => {
  it('runs unmodified on the sync path when the token is prefetched', async () => {
    const script = await sandbox.compile('request', SEED_REQUEST, 't1:acme:v1:request');
    const host = testHost({ token: 'Bearer cached-token' });
    const result = await script.runRequest(requestInput(), host);

    expect(result.path).toBe('sync');
    expect(host.posts).toEqual([]);
    expect(result.uri).toBe('https://api.acme.example/orders/1');
    expect(result.headers).toEqual({
      'Content-Type': 'application/json',
      Authorization: 'Bearer cached-token',
    });
    const body = jsonBody(result);
    expect(body['data']).toBe(aesCbc('hello'));
    expect(aesCbcOpen(body['data'] as string)).toBe('hello');
    expect(body['appKey']).toBe(SECRETS.AppKey);
    expect(body['timestamp']).toBe(1700000000);
    expect(body['sign']).toBe(
      seedSign({ appKey: SECRETS.AppKey, data: body['data'], timestamp: 1700000000 }),
    );
    expect(result.effects).toEqual({ logs: [], tokenOps: [] });
    expect(result.durationUs).toBeGreaterThan(0);
  });

  it('fetches a token through http_post_json on the async path when none is cached', async () => {
    const script = await sandbox.compile('request', SEED_REQUEST, 't1:acme:v1:request');
    const host = testHost({ token: null }, () =>
      JSON.stringify({ code: 0, data: { accessToken: 'fresh-token', expireTime: 1700003600 } }),
    );
    const result = await script.runRequest(requestInput(), host);

    expect(result.path).toBe('async');
    // The sync attempt stopped at http_post_json: the token endpoint is called once.
    expect(host.posts).toHaveLength(1);
    const post = host.posts[0]!;
    expect(post.url).toBe('https://api.acme.example/oauth/token');
    expect(post.headers).toEqual({});
    const tokenRequest = post.body as Record<string, unknown>;
    expect(aesCbcOpen(tokenRequest['data'] as string)).toBe(`{"appKey": "${SECRETS.AppKey}"}`);
    expect(tokenRequest).toEqual({
      appKey: SECRETS.AppKey,
      data: aesCbc(`{"appKey": "${SECRETS.AppKey}"}`),
      timestamp: 1700000000,
      sign: seedSign({ appKey: SECRETS.AppKey, data: tokenRequest['data'], timestamp: 1700000000 }),
    });

    expect(result.headers['Authorization']).toBe('Bearer fresh-token');
    expect(result.effects.tokenOps).toEqual([
      { op: 'save', token: 'Bearer fresh-token', expireTime: 1700003600 },
    ]);
    expect(jsonBody(result)['data']).toBe(aesCbc('hello'));
  });

  it('sees new secret values at once, in a new secrets object or the same one changed', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`reqBody.set('appKey', AppKey); reqBody.set('url', PrefixUrl);`),
      't1:args:v1:request',
    );
    const host = testHost();
    const appKeyOf = async (h: typeof host) => jsonBody(await script.runRequest(requestInput(), h))['appKey'];
    expect(await appKeyOf(host)).toBe(SECRETS.AppKey);
    expect(await appKeyOf({ ...host, secrets: { ...host.secrets, AppKey: 'rotated-1' } })).toBe('rotated-1');
    host.secrets.AppKey = 'rotated-2';
    expect(await appKeyOf(host)).toBe('rotated-2');
    const moved = await script.runRequest(requestInput(), { ...host, prefixUrl: 'https://eu.acme.example' });
    expect(jsonBody(moved)['url']).toBe('https://eu.acme.example');
  });
});

describe('seed response script', () => {
  it('decrypts respBody.data in place and reports the change', async () => {
    const script = await sandbox.compile('response', SEED_RESPONSE, 't1:acme:v1:response');
    const json = { code: 0, data: aesCbc('{"orderId":42}'), msg: 'ok' };
    const result = await script.runResponse(
      { status: 200, headers: { 'content-type': 'application/json' }, rawBody: JSON.stringify(json), json },
      testHost(),
    );
    expect(result.changed).toBe(true);
    expect(result.body).toEqual({ code: 0, data: '{"orderId":42}', msg: 'ok' });
    expect(result.path).toBe('sync');
    expect(result.effects.tokenOps).toEqual([]);
  });

  it('drops the token on a 401 body and leaves a body without data as it was', async () => {
    const script = await sandbox.compile('response', SEED_RESPONSE, 't1:acme:v1:response');
    const json = { code: 401, msg: 'token expired' };
    const result = await script.runResponse(
      { status: 200, headers: {}, rawBody: JSON.stringify(json), json },
      testHost(),
    );
    expect(result.effects.tokenOps).toEqual([{ op: 'delete' }]);
    expect(result.changed).toBe(false);
    expect(result.body).toBe(json);
  });

  it('hands back a changed body as the exact JSON text, line breaks and all, and an unchanged one as null', async () => {
    const script = await sandbox.compile(
      'response',
      responseScript(
        "if (respBody.edit) respBody.note = 'two\\nlines \\u2028 \"quoted\" \\\\ end'; log('ran');",
      ),
      'framing',
    );
    const edited = { edit: true, list: ['a\nb', { 'k\ny': '\u2029' }] };
    const changed = await script.runResponse(
      { status: 200, headers: {}, rawBody: JSON.stringify(edited), rawIsJson: true },
      testHost(),
    );
    const expected = { ...edited, note: 'two\nlines \u2028 "quoted" \\ end' };
    expect(changed.changed).toBe(true);
    expect(changed.bodyText).toBe(JSON.stringify(expected));
    expect(changed.body).toEqual(expected);
    expect(changed.effects.logs).toEqual(['ran']);

    const untouched = await script.runResponse(
      { status: 200, headers: {}, rawBody: '{ "edit": false }', rawIsJson: true },
      testHost(),
    );
    expect(untouched.changed).toBe(false);
    expect(untouched.bodyText).toBeNull();
    expect(untouched.body).toEqual({ edit: false });
  });

  it('gives a non-JSON response to the script as null (the seed script then fails on it)', async () => {
    const probe = await sandbox.compile(
      'response',
      responseScript('log(respBody === null, respRaw());'),
      'probe',
    );
    const result = await probe.runResponse(
      { status: 502, headers: {}, rawBody: '<html>', json: null },
      testHost(),
    );
    expect(result.effects.logs).toEqual(['true <html>']);
    expect(result.body).toBeNull();

    const seed = await sandbox.compile('response', SEED_RESPONSE, 't1:acme:v1:response');
    const err = await errorOf(
      seed.runResponse({ status: 502, headers: {}, rawBody: '<html>', json: null }, testHost()),
    );
    expect(err.code).toBe('KG_SCRIPT_ERROR');
    expect(err.message).toContain("Cannot read properties of null (reading 'code')");
  });
});

describe('limits', () => {
  const misbehaving = requestScript(`
    var mode = reqBody.get('mode');
    if (mode === 'throw') throw new TypeError('bad input for ' + AppKey);
    if (mode === 'loop') for (;;) {}
    if (mode === 'memory') { var big = new Array(8e6).fill(1.5); reqBody.set('n', big.length); }
    if (mode === 'catch-and-loop') { try { http_post_json(TokenUrl, {}, {}); } catch (e) {} for (;;) {} }
    reqBody.set('ok', true);
  `);
  const run = (script: CompiledScript, mode: string) =>
    script.runRequest(requestInput({ body: { kind: 'json', value: { mode } } }), testHost());

  it('a script that throws fails with KG_SCRIPT_ERROR and its line; the next run works', async () => {
    const script = await sandbox.compile('request', misbehaving, 'limits:throw');
    const err = await errorOf(run(script, 'throw'));
    expect(err.code).toBe('KG_SCRIPT_ERROR');
    // Line 4 of the source requestScript() builds; column 33 is where the TypeError is made.
    expect(err.message).toBe(
      `request script failed: TypeError: bad input for ${SECRETS.AppKey} (line 4, column 33)`,
    );
    expect(err.extra).toEqual({ line: 4, column: 33 });
    expect(jsonBody(await run(script, 'fine'))['ok']).toBe(true);
  });

  it('an endless loop fails with KG_SCRIPT_TIMEOUT at the default 50 ms; the next run works', async () => {
    const strict = createSandbox();
    try {
      const script = await strict.compile('request', misbehaving, 'limits:loop');
      const started = performance.now();
      const err = await errorOf(run(script, 'loop'));
      expect(err.code).toBe('KG_SCRIPT_TIMEOUT');
      expect(err.message).toContain('50 ms');
      expect(performance.now() - started).toBeLessThan(2000);
      expect(jsonBody(await run(script, 'fine'))['ok']).toBe(true);
    } finally {
      strict.dispose();
    }
  });

  it('a memory bomb fails with KG_SCRIPT_MEMORY; the isolate is replaced and the next run works', async () => {
    const script = await sandbox.compile('request', misbehaving, 'limits:memory');
    const err = await errorOf(run(script, 'memory'));
    expect(err.code).toBe('KG_SCRIPT_MEMORY');
    expect(err.message).toContain('32 MiB');
    expect(jsonBody(await run(script, 'fine'))['ok']).toBe(true);
    expect(jsonBody(await run(script, 'fine'))['ok']).toBe(true);
  });

  it('catching the sync-path stop at http_post_json does not let a script keep running', async () => {
    const strict = createSandbox({ cpuMs: 50 });
    try {
      const script = await strict.compile('request', misbehaving, 'limits:catch');
      expect((await errorOf(run(script, 'catch-and-loop'))).code).toBe('KG_SCRIPT_TIMEOUT');
    } finally {
      strict.dispose();
    }
  });

  it('time spent in built-ins counts against the CPU limit', async () => {
    const strict = createSandbox({ cpuMs: 50 });
    try {
      const script = await strict.compile(
        'request',
        requestScript(
          `for (var i = 0; i < 1e6; i++) { try { rsa_sha256_sign(secret('Pem'), 'x' + i); } catch (e) {} }`,
        ),
        'limits:builtins',
      );
      const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      });
      const host = testHost({ secrets: { ...SECRETS, Pem: pem.toString() } });
      const err = await errorOf(script.runRequest(requestInput(), host));
      expect(err.code).toBe('KG_SCRIPT_TIMEOUT');
      expect(err.message).toContain('in built-in calls');
    } finally {
      strict.dispose();
    }
  });

  it("another script's runs go on while one is stuck on the async path", async () => {
    const short = createSandbox({ cpuMs: 200 });
    try {
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const stuck = await short.compile(
        'request',
        requestScript('http_post_json(TokenUrl, {}, {}); for (;;) {}'),
        'stuck',
      );
      const waitingHost = testHost({ token: null }, async () => {
        await gate;
        return '{}';
      });
      const stuckRun = errorOf(stuck.runRequest(requestInput(), waitingHost));
      // The stuck run holds its own isolate's thread; this script's runs stay on the sync path.
      const normal = await short.compile('request', SEED_REQUEST, 't1:acme:v1:request');
      for (let i = 0; i < 20; i++) {
        const result = await normal.runRequest(requestInput(), testHost());
        expect(result.path).toBe('sync');
      }
      release();
      expect((await stuckRun).code).toBe('KG_SCRIPT_TIMEOUT');
      expect((await normal.runRequest(requestInput(), testHost())).path).toBe('sync');
    } finally {
      short.dispose();
    }
  });

  it('a run that makes the same call twice sends it twice, even when waiting outlasts the CPU limit', async () => {
    // Answers are kept per call and per occurrence, so that a starved run tried again reuses its
    // earlier attempt's answers; within one run, a repeated call is still a new request.
    const short = createSandbox({ cpuMs: 50 });
    try {
      const script = await short.compile(
        'request',
        requestScript(`
          var a = http_post_json(TokenUrl, { step: 1 }, {});
          var b = http_post_json(TokenUrl, { step: 1 }, {});
          reqBody.set('answers', [a, b]);`),
        'slow-token',
      );
      let calls = 0;
      const host = testHost({ token: null }, async () => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 120));
        return String(calls);
      });
      const result = await script.runRequest(requestInput(), host);
      expect(jsonBody(result)['answers']).toEqual(['1', '2']);
      expect(calls).toBe(2);
    } finally {
      short.dispose();
    }
  });

  it('concurrent runs of one script that all need the async path each get their own answer', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(
        `reqBody.set('answer', JSON.parse(http_post_json(TokenUrl, { n: reqBody.get('n') }, {})).n);`,
      ),
      'limits:concurrent',
    );
    const host = testHost({ token: null }, async (post) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return JSON.stringify({ n: (post.body as { n: number }).n * 10 });
    });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        script.runRequest(requestInput({ body: { kind: 'json', value: { n } } }), host),
      ),
    );
    expect(results.map((r) => jsonBody(r)['answer'])).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
  });
});

describe('http_post_json', () => {
  it('a denied destination fails the run with KG_EGRESS_DENIED even if the script catches it', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(
        `try { http_post_json('https://evil.example/', {}, {}); } catch (e) { reqBody.set('caught', true); }`,
      ),
      'http:egress',
    );
    const host = testHost({ token: null }, () => {
      throw new KeygateError('KG_EGRESS_DENIED', 'evil.example is not an allowed host');
    });
    const err = await errorOf(script.runRequest(requestInput(), host));
    expect(err.code).toBe('KG_EGRESS_DENIED');
  });

  it("the host's error reaches the script; uncaught, it fails the run with its own code", async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        if (reqBody.get('catch')) {
          try { http_post_json(TokenUrl, {}, {}); } catch (e) { reqBody.set('caught', e.message); }
        } else {
          http_post_json(TokenUrl, {}, {});
        }
      `),
      'http:errors',
    );
    const host = () =>
      testHost({ token: null }, () => {
        throw new KeygateError('KG_UPSTREAM_TIMEOUT', 'token endpoint did not answer');
      });
    const caught = await script.runRequest(
      requestInput({ body: { kind: 'json', value: { catch: true } } }),
      host(),
    );
    expect(jsonBody(caught)['caught']).toBe('http_post_json: token endpoint did not answer');
    const err = await errorOf(script.runRequest(requestInput({ body: { kind: 'json', value: {} } }), host()));
    expect(err.code).toBe('KG_UPSTREAM_TIMEOUT');
  });

  it('limits the calls per run', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`for (var i = 0; i < 10; i++) http_post_json(TokenUrl, {}, {});`),
      'http:many',
    );
    const host = testHost({ token: null });
    const err = await errorOf(script.runRequest(requestInput(), host));
    expect(err.message).toContain('http_post_json: at most 4 calls per run');
    expect(host.posts).toHaveLength(4);
  });
});

describe('compile cache', () => {
  it('returns the cached script for the same key and source, and replaces it for a new source', async () => {
    const first = await sandbox.compile(
      'request',
      requestScript('reqBody.set("v", 1);'),
      'cache:t:v1:request',
    );
    const again = await sandbox.compile(
      'request',
      requestScript('reqBody.set("v", 1);'),
      'cache:t:v1:request',
    );
    expect(again).toBe(first);
    const changed = await sandbox.compile(
      'request',
      requestScript('reqBody.set("v", 2);'),
      'cache:t:v1:request',
    );
    expect(changed).not.toBe(first);
    expect(jsonBody(await changed.runRequest(requestInput(), testHost()))['v']).toBe(2);
  });

  it('evict drops every key under the prefix; a script still held keeps working', async () => {
    const held = await sandbox.compile(
      'request',
      requestScript('reqBody.set("v", 1);'),
      'cache:evict:v1:request',
    );
    sandbox.evict('cache:evict:');
    const fresh = await sandbox.compile(
      'request',
      requestScript('reqBody.set("v", 1);'),
      'cache:evict:v1:request',
    );
    expect(fresh).not.toBe(held);
    expect(jsonBody(await held.runRequest(requestInput(), testHost()))['v']).toBe(1);
  });

  it('a script that failed to compile is not cached', async () => {
    await expect(sandbox.compile('request', 'function (', 'cache:bad')).rejects.toMatchObject({
      code: 'KG_SCRIPT_SYNTAX',
    });
    const good = await sandbox.compile('request', requestScript(''), 'cache:bad');
    expect(good.kind).toBe('request');
  });

  it('refuses work after dispose', async () => {
    const short = createSandbox();
    const script = await short.compile('request', requestScript(''), 'k');
    short.dispose();
    await expect(short.compile('request', requestScript(''), 'k2')).rejects.toMatchObject({
      code: 'KG_INTERNAL',
    });
    await expect(script.runRequest(requestInput(), testHost())).rejects.toMatchObject({
      code: 'KG_INTERNAL',
    });
  });
});

describe('syntax checks', () => {
  async function syntaxError(source: string): Promise<KeygateError> {
    return errorOf(sandbox.validate('request', source));
  }

  it('reports line and column in the tenant source', async () => {
    const err = await syntaxError(`${'function (reqHeaders) {\n'}  var ok = 1;\n  var x = ;\n}`);
    expect(err.code).toBe('KG_SCRIPT_SYNTAX');
    expect(err.message).toBe("request script: Unexpected token ';' at line 3, column 11");
    expect(err.extra).toEqual({ line: 3, column: 11 });
    // On the first line, where the wrapping parenthesis would shift columns.
    expect((await syntaxError('function (a) { var = 1; }')).extra).toEqual({ line: 1, column: 20 });
  });

  it('points at the end of the source when it stops early', async () => {
    const err = await syntaxError('function (a) {\n  return 1;\n');
    expect(err.message).toContain('the script ends early');
    expect(err.extra).toEqual({ line: 3, column: 1 });
  });

  it('rejects anything that is not exactly one function expression', async () => {
    for (const source of [
      'function () {}, 1',
      'function () {}); globalThis.x = 1; (0',
      'var x = 1',
      '42',
      'async function () {}',
      'function* () {}',
      'class {}',
      'function () {}.bind(null)',
      '(function () {}, function () {})',
      '',
    ]) {
      const err = await syntaxError(source);
      expect(err.code, source).toBe('KG_SCRIPT_SYNTAX');
      expect(err.extra, source).toHaveProperty('line');
    }
    // Compiles once wrapped in parentheses, and evaluates to a function: only the text check sees it.
    const extra = await syntaxError('function () {}\n); globalThis.x = 1; (function () {}');
    expect(extra.message).toContain('exactly one function expression');
    expect(extra.extra).toEqual({ line: 2, column: 1 });
  });

  it('accepts comments, wrapping parentheses, named functions and arrows', async () => {
    for (const source of [
      '// signs acme requests\nfunction (reqHeaders) { /* nothing */ }\n// end',
      '(function sign(reqHeaders) {})',
      '(reqHeaders, reqParams) => { reqParams.set("a", "1"); }',
      SEED_REQUEST,
    ]) {
      await expect(sandbox.validate('request', source), source).resolves.toBeUndefined();
    }
  });

  it('compile reports the same errors, and runtime errors carry their line too', async () => {
    await expect(
      sandbox.compile('response', 'function (respBody) {\n  respBody..x;\n}', 'syntax:rt'),
    ).rejects.toMatchObject({
      code: 'KG_SCRIPT_SYNTAX',
      extra: { line: 2, column: 12 },
    });
    const script = await sandbox.compile(
      'response',
      'function (respBody) {\n  log("before");\n  respBody.a.b;\n}',
      'rt',
    );
    const err = await errorOf(
      script.runResponse({ status: 200, headers: {}, rawBody: '{}', json: {} }, testHost()),
    );
    expect(err.extra).toEqual({ line: 3, column: 14 });
    expect(scriptLogsOf(err)).toEqual(['before']);
  });
});
