/**
 * What a hostile tenant script can reach: no isolated-vm object, no way to patch what the
 * bootstrap relies on, nothing from an earlier run or another tenant, and no secret in its error
 * messages or logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeygateError } from '../errors.ts';
import { createSandbox, type Sandbox } from './index.ts';
import { evaluator, jsonBody, requestInput, requestScript, SECRETS, testHost } from './test-support.ts';

let sandbox: Sandbox;
let run: (expression: string) => Promise<unknown>;

beforeAll(async () => {
  sandbox = createSandbox({ cpuMs: 2000 });
  const evaluate = await evaluator(sandbox);
  run = (expression) => evaluate(expression);
});

afterAll(() => sandbox.dispose());

/**
 * Walks everything reachable from the global object (own properties, getters' results are not
 * taken, prototypes) and lists anything that looks like an isolated-vm handle.
 */
const FIND_IVM_OBJECTS = `(function () {
  var suspicious = ['deref', 'derefInto', 'applySync', 'applySyncPromise', 'copyInto', 'copySync', 'release', 'compileScript', 'createContext'];
  var seen = new Set();
  var found = [];
  var visited = 0;
  var pending = [[globalThis, 'globalThis']];
  while (pending.length > 0) {
    var entry = pending.pop();
    var value = entry[0];
    var path = entry[1];
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) continue;
    seen.add(value);
    visited++;
    var keys = Reflect.ownKeys(value);
    for (var i = 0; i < keys.length; i++) {
      var key = keys[i];
      if (suspicious.indexOf(String(key)) !== -1) found.push(path + '.' + String(key));
      var desc = Object.getOwnPropertyDescriptor(value, key);
      var name = path + '.' + String(key);
      if ('value' in desc) pending.push([desc.value, name]);
      if (desc.get) pending.push([desc.get, name + '<get>']);
      if (desc.set) pending.push([desc.set, name + '<set>']);
    }
    pending.push([Object.getPrototypeOf(value), path + '.__proto__']);
  }
  return { found: found, visited: visited };
})()`;

describe('isolated-vm objects', () => {
  it('none is reachable from the global object', async () => {
    const { found, visited } = (await run(FIND_IVM_OBJECTS)) as { found: string[]; visited: number };
    expect(found).toEqual([]);
    expect(visited).toBeGreaterThan(500);
  });

  it('none is reachable from the script arguments either', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        var found = [];
        var seen = new Set();
        var pending = [reqHeaders, reqParams, reqBody, http_post_json, secret, sha256, aes_cbc_pkcs5_encrypt];
        while (pending.length > 0) {
          var value = pending.pop();
          if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) continue;
          seen.add(value);
          Reflect.ownKeys(value).forEach(function (key) {
            if (/deref|applySync|copyInto|release/.test(String(key))) found.push(String(key));
            var desc = Object.getOwnPropertyDescriptor(value, key);
            pending.push(desc.value, desc.get, desc.set);
          });
          pending.push(Object.getPrototypeOf(value));
        }
        reqBody.set('found', found);
      `),
      'isolation:args',
    );
    expect(jsonBody(await script.runRequest(requestInput(), testHost()))['found']).toEqual([]);
  });

  it('built-ins are plain functions whose callers and closures cannot be pried open', async () => {
    expect(
      await run(
        '[typeof http_post_json, http_post_json.constructor === Function, Object.getPrototypeOf(sha256) === Function.prototype]',
      ),
    ).toEqual(['function', true, true]);
    expect(
      await run(
        `(function () { try { return String(sha256.caller); } catch (e) { return e.constructor.name; } })()`,
      ),
    ).toBe('TypeError');
    // A script callback run by a built-in sees no caller: the bootstrap is strict code.
    expect(
      await run(`(function () {
        var callers = [];
        log({ toJSON: function probe() { callers.push(probe.caller); return 1; } });
        return callers.map(function (c) { return c === null; });
      })()`),
    ).toEqual([true]);
    // There is no way to get V8's structured stack frames (they would expose the functions).
    expect(
      await run(`(function () {
        Error.prepareStackTrace = function (e, frames) { return frames; };
        return typeof new Error('x').stack;
      })()`),
    ).toBe('string');
  });

  it('the tenant function cannot reach the bootstrap through arguments.callee.caller', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`reqBody.set('caller', String(arguments.callee.caller));`),
      'isolation:callee',
    );
    expect(jsonBody(await script.runRequest(requestInput(), testHost()))['caller']).toBe('null');
  });
});

describe('lock-down', () => {
  it('intrinsics are frozen and the bootstrap cannot be patched', async () => {
    expect(
      await run(`[Object.prototype, Array.prototype, Function.prototype, JSON, Uint8Array.prototype, Promise.prototype, Map.prototype]
        .every(Object.isFrozen)`),
    ).toBe(true);
    expect(
      await run(`(function () {
        Object.prototype.polluted = 1;
        JSON.stringify = function () { return 'hijacked'; };
        Array.prototype.push = function () {};
        return [({}).polluted, JSON.stringify({ a: 1 }), [1].concat(2).length];
      })()`),
    ).toEqual([null, '{"a":1}', 2]); // undefined becomes null in the JSON that carries the result
  });

  it('built-ins cannot be replaced and risky globals are gone', async () => {
    expect(
      await run(`(function () {
        sha256 = function () { return 'fake'; };
        return [sha256('abc').length, typeof WebAssembly, typeof SharedArrayBuffer, typeof Atomics,
          typeof FinalizationRegistry, typeof WeakRef, typeof require, typeof process, typeof setTimeout];
      })()`),
    ).toEqual([
      64,
      'undefined',
      'undefined',
      'undefined',
      'undefined',
      'undefined',
      'undefined',
      'undefined',
      'undefined',
    ]);
    expect(await run(`delete globalThis.sha256`)).toBe(false);
  });

  it('console.log is the masked log()', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`console.log('hi', { a: 1 });`),
      'isolation:console',
    );
    expect((await script.runRequest(requestInput(), testHost())).effects.logs).toEqual(['hi {"a":1}']);
  });
});

describe('state between runs', () => {
  it('globals a run leaves behind are gone in the next run', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        reqBody.set('before', typeof leaked + ',' + typeof globalThis.explicit);
        leaked = 'from an earlier request';
        globalThis.explicit = 1;
      `),
      'isolation:globals',
    );
    for (let i = 0; i < 3; i++) {
      expect(jsonBody(await script.runRequest(requestInput(), testHost()))['before']).toBe(
        'undefined,undefined',
      );
    }
  });

  it('a global that cannot be deleted gets the script a fresh isolate', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        reqBody.set('before', typeof globalThis.sticky);
        globalThis.sticky = 1;
        Object.freeze(globalThis);
      `),
      'isolation:sticky',
    );
    const bodies = [];
    for (let i = 0; i < 3; i++)
      bodies.push(jsonBody(await script.runRequest(requestInput(), testHost()))['before']);
    expect(bodies).toEqual(['undefined', 'undefined', 'undefined']);
  });

  it('hidden globals cannot be made, and a changed global prototype does not reach the next run', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        reqBody.set('before', typeof globalThis.viaProto);
        var refused = [];
        var attempts = [
          function () { Object.defineProperty(globalThis, 'stash', { value: 1 }); },
          function () { Object.defineProperties(globalThis, { stash: { value: 1 } }); },
          function () { Reflect.defineProperty(globalThis, 'stash', { value: 1 }); },
          function () { globalThis.__defineGetter__('stash', function () { return 1; }); },
        ];
        for (var i = 0; i < attempts.length; i++) {
          try { attempts[i](); } catch (e) { refused.push(e instanceof TypeError); }
        }
        reqBody.set('refused', refused.join(','));
        reqBody.set('other', String(Object.defineProperty({}, 'a', { value: 1 }).a));
        Object.setPrototypeOf(globalThis, { viaProto: 'kept' });
      `),
      'isolation:hidden-globals',
    );
    for (let i = 0; i < 3; i++) {
      const body = jsonBody(await script.runRequest(requestInput(), testHost()));
      expect(body).toMatchObject({ before: 'undefined', refused: 'true,true,true,true', other: '1' });
    }
  });

  it('symbol-keyed globals, the global prototype and RegExp statics carry nothing to the next run', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        // The global's prototype is frozen: the assignment does not take (silently, in sloppy code).
        var proto = Object.getPrototypeOf(globalThis);
        reqBody.set('before', String(globalThis[Symbol.for('k')]) + ',' + RegExp.$1 + ',' + String(proto.kept));
        proto.kept = 'from an earlier request';
        globalThis[Symbol.for('k')] = 'from an earlier request';
        /(secret-\\d+)/.exec('x secret-42 y');
      `),
      'isolation:symbols',
    );
    for (let i = 0; i < 3; i++) {
      expect(jsonBody(await script.runRequest(requestInput(), testHost()))['before']).toBe(
        'undefined,,undefined',
      );
    }
  });

  it('work queued for after the run cannot record effects or reach the next run', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        reqBody.set('token', token_load());
        Promise.resolve().then(function () {
          try { token_save('Bearer sneaky', 0); } catch (e) {}
          try { reqHeaders.set('X-Late', '1'); } catch (e) {}
          late = 'a global made after the run';
        });
        reqBody.set('late', typeof late);
      `),
      'isolation:microtask',
    );
    const first = await script.runRequest(requestInput(), testHost({ token: 'Bearer a' }));
    expect(first.effects.tokenOps).toEqual([]);
    expect(first.headers['X-Late']).toBeUndefined();
    const second = await script.runRequest(requestInput(), testHost({ token: 'Bearer b' }));
    expect(jsonBody(second)['token']).toBe('Bearer b');
    expect(jsonBody(second)['late']).toBe('undefined');
    expect(second.effects.tokenOps).toEqual([]);
  });

  it('a promise the script rejects and leaves unhandled fails the run as a masked script error', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`Promise.reject(new Error('rejected with ' + AesKey));`),
      'isolation:rejection',
    );
    try {
      await script.runRequest(requestInput(), testHost());
      expect.unreachable();
    } catch (err) {
      if (!isKeygateError(err)) throw err;
      expect(err.code).toBe('KG_SCRIPT_ERROR');
      expect(err.message).toBe(
        'request script failed: a promise it left behind was rejected: rejected with **** (line 2, column 16)',
      );
      expect(err.cause).toBeUndefined();
    }
  });

  it('argument objects cannot be kept for a later run', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        var kept = globalThis.kept;
        if (kept) { try { kept.set('X-Old', '1'); reqBody.set('late', 'worked'); } catch (e) { reqBody.set('late', 'ok'); } }
        Object.setPrototypeOf(globalThis, { kept: reqHeaders });
      `),
      'isolation:kept',
    );
    await script.runRequest(requestInput(), testHost());
    // The global object's new prototype that kept it went with the isolate it changed.
    const second = await script.runRequest(requestInput(), testHost());
    expect(second.headers['X-Old']).toBeUndefined();
    expect(jsonBody(second)['late']).toBeUndefined();
  });

  it('tenants do not share an isolate', async () => {
    const writer = await sandbox.compile(
      'request',
      // Left on the global object until this script's next run clears it.
      requestScript(`globalThis.tenantA = AppKey;`),
      'tenant-a:acme:v1:request',
    );
    const reader = await sandbox.compile(
      'request',
      requestScript(`reqBody.set('seen', typeof globalThis.tenantA);`),
      'tenant-b:acme:v1:request',
    );
    await writer.runRequest(requestInput(), testHost());
    expect(jsonBody(await reader.runRequest(requestInput(), testHost()))['seen']).toBe('undefined');
  });
});

describe('secrets in output', () => {
  it('log() masks sensitive values as-is, base64 and hex', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`
        log('key', AesKey);
        log(base64_encode(AesKey), hex_encode(AesKey), hex_encode(AesKey).toUpperCase());
        log({ nested: secret('AppSecret') });
        log('app key is not sensitive', AppKey);
      `),
      'isolation:log',
    );
    const { logs } = (await script.runRequest(requestInput(), testHost())).effects;
    const all = logs.join('\n');
    for (const value of [SECRETS.AesKey, SECRETS.AppSecret]) {
      expect(all).not.toContain(value);
      expect(all).not.toContain(Buffer.from(value).toString('base64'));
      expect(all).not.toContain(Buffer.from(value).toString('hex'));
      expect(all).not.toContain(Buffer.from(value).toString('hex').toUpperCase());
    }
    expect(logs[0]).toBe('key ****');
    expect(logs[3]).toBe(`app key is not sensitive ${SECRETS.AppKey}`);
  });

  it('error messages the script produces are masked', async () => {
    const script = await sandbox.compile(
      'request',
      requestScript(`throw new Error('leak ' + AesKey + ' ' + base64_encode(secret('AppSecret')));`),
      'isolation:error',
    );
    try {
      await script.runRequest(requestInput(), testHost());
      expect.unreachable();
    } catch (err) {
      if (!isKeygateError(err)) throw err;
      expect(err.message).toContain('leak **** ****');
      expect(err.message).not.toContain(SECRETS.AesKey);
      expect(JSON.stringify(err.extra)).not.toContain(SECRETS.AesKey);
    }
  });

  it('bytes from the host carry nothing but themselves', async () => {
    // A Buffer from node:crypto can be a view into Node's shared pool; the script must only get
    // its own bytes, not the rest of that memory.
    expect(
      await run(`(function () {
        var out = aes_cbc_pkcs5_encrypt('${SECRETS.AesKey}', 'x', '${SECRETS.AesIV}');
        var mac = hmac_sha1_bytes('k', 'x');
        return [out.length, out.buffer.byteLength, mac.length, mac.buffer.byteLength];
      })()`),
    ).toEqual([16, 16, 20, 20]);
  });
});
