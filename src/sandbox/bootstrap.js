/*
 * keygate sandbox bootstrap: the only code that runs inside a tenant isolate before the tenant's
 * script. script-runtime.ts evaluates this file once per isolate as
 *
 *   return (<this file>)(hostCall, httpRef, configJson);
 *
 * - hostCall: an isolated-vm Callback (inside the isolate, a plain native function) that runs the
 *   node:crypto built-ins and secret lookups on the host:
 *   hostCall(builtinIndex, invocationId, binaryArgs, ...args). Bytes cross as latin1 strings
 *   (bit i of binaryArgs marks argument i as bytes), which isolated-vm copies far faster than a
 *   Uint8Array. It returns the value, or a plain object { message, code, abort } on failure.
 * - httpRef: an isolated-vm Reference to the host's http_post_json; only used in async runs, via
 *   applySyncPromise, which blocks this isolate's thread but not Node's.
 * - configJson: limits, and the host built-ins' names, argument specs and result kinds.
 *
 * Both stay in this closure. Tenant code only ever sees the plain functions defined below, and by
 * the time it first runs every intrinsic reachable from the global object is frozen, so it cannot
 * hook a prototype to catch one of these objects passing through our code (see hardenIntrinsics).
 *
 * The context is reused for every invocation of the script (creating one costs milliseconds, a
 * run costs microseconds). Per-invocation state lives in `current` and is replaced on every run;
 * the argument objects (reqHeaders, ...) are made once and read `current`, so one kept from an
 * earlier run only ever sees the run in progress. Enumerable globals the script leaves behind are
 * deleted before the next run.
 *
 * Returns { install(fn), run(mode, invocationId, kind, inputJson, argsJson, rawBody, jsonText) }
 * (rawBody: a response's body as received, or a request's JSON body as text):
 * both answer with a JSON string (a request run's JSON body, or a response body the script
 * changed, follows it on its own line), so every run crosses the isolate boundary once each way.
 */
(function keygateBootstrap(hostCall, httpRef, configJson) {
  // biome-ignore lint/suspicious/noRedundantUseStrict: not a module; it runs as a plain script in the isolate
  'use strict';

  const {
    defineProperty,
    freeze,
    getOwnPropertyDescriptor,
    getOwnPropertySymbols,
    getPrototypeOf,
    hasOwn,
    isExtensible,
    keys: objectKeys,
    prototype: objectPrototype,
  } = Object;
  const { apply, ownKeys } = Reflect;
  const jsonParse = JSON.parse;
  const jsonStringify = JSON.stringify;
  const functionToString = Function.prototype.toString;
  const applySyncPromise = httpRef.applySyncPromise;
  const config = jsonParse(configJson);

  // ------------------------------------------------------------------------------------------
  // Lock-down: runs before any tenant code.

  // Capabilities a signing script has no use for: shared memory and blocking waits, code
  // generation from bytes, and callbacks that would run outside an invocation's time limit.
  const REMOVED_GLOBALS = [
    'WebAssembly',
    'SharedArrayBuffer',
    'Atomics',
    'FinalizationRegistry',
    'WeakRef',
    'console',
  ];

  function hiddenIntrinsicRoots() {
    const roots = [
      function* generator() {},
      async function asyncFunction() {},
      async function* asyncGenerator() {},
      (function* iterate() {})(),
      [][Symbol.iterator](),
      new Map().entries(),
      new Set().values(),
      ''[Symbol.iterator](),
      'a'.matchAll(/a/g),
      [].values().map((x) => x),
      Iterator.from({ next: () => ({ done: true }) }),
    ];
    try {
      const segments = new Intl.Segmenter().segment('a');
      roots.push(segments, segments[Symbol.iterator]());
    } catch {
      // no Intl.Segmenter in this build: nothing to freeze
    }
    return roots;
  }

  /** Freezes everything reachable from the global object's properties and prototypes. */
  function hardenIntrinsics() {
    const pending = hiddenIntrinsicRoots();
    for (const key of ownKeys(globalThis)) {
      const desc = getOwnPropertyDescriptor(globalThis, key);
      pending.push(desc.value, desc.get, desc.set);
    }
    // The global object's own prototype too (not Object.prototype here): a script could keep
    // state on it from one run to the next.
    pending.push(getPrototypeOf(globalThis));
    const seen = new Set([globalThis]);
    while (pending.length > 0) {
      const value = pending.pop();
      if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value))
        continue;
      seen.add(value);
      freeze(value);
      pending.push(getPrototypeOf(value));
      for (const key of ownKeys(value)) {
        const desc = getOwnPropertyDescriptor(value, key);
        pending.push(desc.value, desc.get, desc.set);
      }
    }
  }

  /** The global object stays extensible (sloppy scripts may assign undeclared names), but nothing
   * on it can be replaced or deleted. */
  function lockGlobalProperties() {
    for (const key of ownKeys(globalThis)) {
      const desc = getOwnPropertyDescriptor(globalThis, key);
      if (desc.configurable) {
        defineProperty(
          globalThis,
          key,
          'value' in desc ? { configurable: false, writable: false } : { configurable: false },
        );
      }
    }
  }

  // The global object's prototype as set-up leaves it.
  let bootGlobalPrototype = null;
  const EMPTY_PATTERN = /(?:)/;
  const regExpExec = (pattern, text) => apply(RegExp.prototype.exec, pattern, [text]);

  /**
   * Deletes the enumerable globals a previous run (or work it queued) created, so nothing a run
   * stores carries into the next one (another calling service's request). Hidden globals cannot be
   * made (guardGlobalObject); a global object whose prototype was changed, or that was made
   * non-extensible, or a global that cannot be deleted means the isolate must be replaced (false).
   * Both checks are O(1): listing every global on each run would cost about 5 µs.
   */
  function clearScriptGlobals() {
    if (getPrototypeOf(globalThis) !== bootGlobalPrototype || !isExtensible(globalThis)) return false;
    // RegExp.$1, RegExp.input, ...: the last match of the previous run, reset by a match of nothing.
    regExpExec(EMPTY_PATTERN, '');
    // Symbol-keyed globals are not among Object.keys (the boot globals have none).
    const leftovers = [...objectKeys(globalThis), ...getOwnPropertySymbols(globalThis)];
    if (leftovers.length === 0) return true;
    for (const key of leftovers) {
      try {
        delete globalThis[key];
      } catch {
        return false;
      }
    }
    return true;
  }

  /**
   * Properties defined on the global object through the descriptor functions could be hidden
   * (non-enumerable) and outlive the run unseen; these functions refuse the global object as a
   * target. Assignments (`x = 1`, `globalThis.x = 1`) still work and are cleared after the run.
   */
  function guardGlobalObject() {
    const refuse = (name) => {
      throw new TypeError(`${name}: the global object takes no property descriptors; assign instead`);
    };
    // `targetOf` picks the object a call defines on: its first argument, or `this` (the legacy
    // __defineGetter__ / __defineSetter__ methods).
    const guard = (owner, key, name, targetOf) => {
      const original = owner[key];
      defineProperty(owner, key, {
        value: {
          [key](...args) {
            if (targetOf(this, args) === globalThis) refuse(name);
            return apply(original, this, args);
          },
        }[key],
        writable: false,
        configurable: false,
        enumerable: false,
      });
    };
    const firstArgument = (_self, args) => args[0];
    const receiver = (self) => self;
    guard(Object, 'defineProperty', 'Object.defineProperty', firstArgument);
    guard(Object, 'defineProperties', 'Object.defineProperties', firstArgument);
    guard(Reflect, 'defineProperty', 'Reflect.defineProperty', firstArgument);
    guard(objectPrototype, '__defineGetter__', '__defineGetter__', receiver);
    guard(objectPrototype, '__defineSetter__', '__defineSetter__', receiver);
  }

  // ------------------------------------------------------------------------------------------
  // Invocation state and errors

  const ASYNC_NEEDED = freeze({ keygate: 'http_post_json needs the async path' });
  const NEEDS_ASYNC_RESULT = jsonStringify({ needsAsync: true });
  const STALE_ISOLATE_RESULT = jsonStringify({ staleIsolate: true });
  const BAD_JSON_BODY_RESULT = jsonStringify({ badJsonBody: true });
  const builtinErrors = new WeakMap();
  let scriptFunction = null;
  let current = null;

  function builtinError(message, code, hostErrorId) {
    const err = new Error(message);
    builtinErrors.set(err, { code: code ?? 'KG_SCRIPT_ERROR', hostErrorId: hostErrorId ?? null });
    return err;
  }

  /**
   * Every stateful built-in starts here. Once a sync run has asked for http_post_json, or the host
   * has aborted the run, every built-in throws again, so a script that catches the first error
   * cannot carry on as if nothing happened.
   */
  function enter(name) {
    const inv = current;
    if (inv === null || !inv.active) throw builtinError(`${name}: built-ins only work while the script runs`);
    if (inv.needsAsync) throw ASYNC_NEEDED;
    if (inv.aborted !== null) throw inv.aborted;
    return inv;
  }

  function typeName(value) {
    if (value === null) return 'null';
    if (Array.isArray(value)) return 'an array';
    if (value instanceof Uint8Array) return 'bytes';
    return typeof value;
  }

  function fail(message) {
    throw builtinError(message);
  }

  // ------------------------------------------------------------------------------------------
  // Bytes and text

  /** Writes `text` as UTF-8 into `out` (which has room for 3 bytes a char); returns the length. */
  function utf8EncodeInto(text, out) {
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        out[n++] = c;
        continue;
      }
      if (c < 0x800) {
        out[n++] = 0xc0 | (c >> 6);
        out[n++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          out[n++] = 0xf0 | (c >> 18);
          out[n++] = 0x80 | ((c >> 12) & 0x3f);
          out[n++] = 0x80 | ((c >> 6) & 0x3f);
          out[n++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // a lone surrogate is written as U+FFFD, as TextEncoder does
      }
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
    return n;
  }

  function utf8Encode(text) {
    const out = new Uint8Array(text.length * 3);
    return out.slice(0, utf8EncodeInto(text, out));
  }

  /** UTF-8 to string; bad sequences become U+FFFD exactly as the WHATWG decoder does. */
  function utf8Decode(bytes) {
    const units = [];
    let text = '';
    const flush = () => {
      text += String.fromCharCode.apply(null, units);
      units.length = 0;
    };
    let i = 0;
    while (i < bytes.length) {
      const lead = bytes[i];
      if (lead < 0x80) {
        units.push(lead);
        i++;
      } else {
        let need = 0;
        let lower = 0x80;
        let upper = 0xbf;
        let cp = 0;
        if (lead >= 0xc2 && lead <= 0xdf) {
          need = 1;
          cp = lead & 0x1f;
        } else if (lead >= 0xe0 && lead <= 0xef) {
          need = 2;
          cp = lead & 0x0f;
          if (lead === 0xe0) lower = 0xa0;
          if (lead === 0xed) upper = 0x9f;
        } else if (lead >= 0xf0 && lead <= 0xf4) {
          need = 3;
          cp = lead & 0x07;
          if (lead === 0xf0) lower = 0x90;
          if (lead === 0xf4) upper = 0x8f;
        }
        let j = i + 1;
        let valid = need > 0;
        while (valid && j <= i + need) {
          const byte = j < bytes.length ? bytes[j] : -1;
          if (byte < lower || byte > upper) {
            valid = false;
          } else {
            cp = (cp << 6) | (byte & 0x3f);
            lower = 0x80;
            upper = 0xbf;
            j++;
          }
        }
        if (!valid) {
          units.push(0xfffd);
          // A bad lead byte is consumed; after a bad or missing continuation byte, decoding
          // resumes at that byte (so one U+FFFD per broken sequence, as TextDecoder does).
          i = need === 0 ? i + 1 : Math.min(j, bytes.length);
        } else {
          if (cp >= 0x10000) {
            cp -= 0x10000;
            units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
          } else {
            units.push(cp);
          }
          i = j;
        }
      }
      if (units.length >= 8192) flush();
    }
    flush();
    return text;
  }

  function bytesOf(name, label, value) {
    if (typeof value === 'string') return utf8Encode(value);
    if (value instanceof Uint8Array) return value;
    return fail(`${name}: ${label} must be a string or bytes, got ${typeName(value)}`);
  }

  function stringArg(name, label, value) {
    if (typeof value === 'string') return value;
    return fail(`${name}: ${label} must be a string, got ${typeName(value)}`);
  }

  const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  function base64Encode(bytes, alphabet, pad) {
    let out = '';
    let i = 0;
    for (; i + 2 < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
    }
    const rest = bytes.length - i;
    if (rest === 1) {
      const n = bytes[i] << 16;
      out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (pad ? '==' : '');
    } else if (rest === 2) {
      const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
      out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (pad ? '=' : '');
    }
    return out;
  }

  /** Digit values of an alphabet's characters (-1 for the rest), for decoding. */
  function decodeTable(alphabet) {
    const table = new Int8Array(128).fill(-1);
    for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
    return table;
  }
  const BASE64_DIGITS = decodeTable(BASE64);
  const BASE64URL_DIGITS = decodeTable(BASE64URL);

  function base64Decode(name, text, digits) {
    const clean = stringArg(name, 'input', text).replace(/\s+/g, '');
    const body = clean.replace(/={1,2}$/, '');
    if (body.length % 4 === 1 || (clean.length !== body.length && clean.length % 4 !== 0)) {
      fail(`${name}: input is not valid base64 (wrong length)`);
    }
    const out = new Uint8Array(Math.floor((body.length * 3) / 4));
    let bits = 0;
    let value = 0;
    let n = 0;
    for (let i = 0; i < body.length; i++) {
      const code = body.charCodeAt(i);
      const digit = code < 128 ? digits[code] : -1;
      if (digit === -1) fail(`${name}: input is not valid base64 (unexpected character at position ${i})`);
      value = ((value << 6) | digit) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[n++] = (value >> bits) & 0xff;
      }
    }
    return out;
  }

  const HEX = '0123456789abcdef';

  function hexEncode(bytes) {
    let out = '';
    for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
    return out;
  }

  function hexDecode(text) {
    const hex = stringArg('hex_decode', 'input', text);
    if (hex.length % 2 !== 0) fail('hex_decode: input must have an even number of hex digits');
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) {
      const hi = parseInt(hex[2 * i], 16);
      const lo = parseInt(hex[2 * i + 1], 16);
      if (Number.isNaN(hi) || Number.isNaN(lo)) fail(`hex_decode: invalid hex digit near position ${2 * i}`);
      out[i] = (hi << 4) | lo;
    }
    return out;
  }

  function percentEncode(bytes, keep, spaceAsPlus) {
    let out = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (keep(b)) out += String.fromCharCode(b);
      else if (spaceAsPlus && b === 0x20) out += '+';
      else out += `%${HEX[b >> 4].toUpperCase()}${HEX[b & 15].toUpperCase()}`;
    }
    return out;
  }

  const isAlphanumeric = (b) =>
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
  // RFC 3986 unreserved: A-Z a-z 0-9 - . _ ~
  const isUnreserved = (b) => isAlphanumeric(b) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
  // application/x-www-form-urlencoded keeps A-Z a-z 0-9 * - . _ and writes a space as +
  const isFormSafe = (b) => isAlphanumeric(b) || b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f;

  /** A field value as it goes into a sign string or a form: objects as JSON, the rest as text. */
  function fieldText(value) {
    if (typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array))
      return jsonStringify(value);
    return String(value);
  }

  function formEncode(value) {
    const component = (text) => percentEncode(utf8Encode(text), isFormSafe, true);
    if (typeof value === 'string') return component(value);
    let pairs;
    if (Array.isArray(value)) pairs = value;
    else if (typeof value === 'object' && value !== null)
      pairs = objectKeys(value).map((key) => [key, value[key]]);
    else
      fail(
        `form_encode: input must be an object, an array of [name, value] pairs or a string, got ${typeName(value)}`,
      );
    const parts = [];
    for (const pair of pairs) {
      if (!Array.isArray(pair) || pair.length !== 2) fail('form_encode: each pair must be [name, value]');
      if (pair[1] === undefined || pair[1] === null) continue;
      parts.push(`${component(String(pair[0]))}=${component(fieldText(pair[1]))}`);
    }
    return parts.join('&');
  }

  function dateArg(name, ms) {
    if (ms === undefined || ms === null) return new Date();
    if (typeof ms !== 'number' || !Number.isFinite(ms))
      fail(`${name}: time must be epoch milliseconds, got ${typeName(ms)}`);
    const date = new Date(ms);
    if (Number.isNaN(date.getTime())) fail(`${name}: time is out of range`);
    return date;
  }

  function amzDate(ms) {
    const iso = dateArg('date_amz', ms).toISOString();
    return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  }

  // ------------------------------------------------------------------------------------------
  // SHA-256 and HMAC-SHA256, here rather than on the host: they are the most used signing
  // primitives, and every crossing to the host costs several microseconds, a large part of the
  // request budget. SHA-256 is only additions, rotations and XORs, so this runs in constant time
  // like OpenSSL's. Large inputs still go to the host, where OpenSSL is faster per byte.

  const LOCAL_HASH_MAX_BYTES = 16384;
  const SHA256_K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const SHA256_INITIAL = new Int32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);

  // One SHA-256 (FIPS 180-4) computation at a time, in buffers made once per isolate: allocating
  // typed arrays per call would cost more than the hashing. sha256Start, sha256Update...,
  // sha256Finish. Plain closure variables: V8 runs this about twice as fast as with an object.
  const shaState = new Int32Array(8);
  const shaWords = new Int32Array(64);
  const shaBlock = new Uint8Array(64);
  let shaFilled = 0;
  let shaTotal = 0;

  function sha256Start() {
    shaState.set(SHA256_INITIAL);
    shaFilled = 0;
    shaTotal = 0;
  }

  /** Adds the first `length` bytes of `bytes`. */
  function sha256Update(bytes, length) {
    let i = 0;
    shaTotal += length;
    if (shaFilled > 0) {
      while (i < length && shaFilled < 64) shaBlock[shaFilled++] = bytes[i++];
      if (shaFilled < 64) return;
      sha256Compress(shaBlock, 0);
      shaFilled = 0;
    }
    for (; i + 64 <= length; i += 64) sha256Compress(bytes, i);
    while (i < length) shaBlock[shaFilled++] = bytes[i++];
  }

  /** Writes the 32-byte digest into `out`. */
  function sha256Finish(out) {
    const bits = shaTotal * 8;
    shaBlock[shaFilled++] = 0x80;
    if (shaFilled > 56) {
      shaBlock.fill(0, shaFilled);
      sha256Compress(shaBlock, 0);
      shaFilled = 0;
    }
    shaBlock.fill(0, shaFilled, 56);
    const high = Math.floor(bits / 0x100000000);
    const low = bits >>> 0;
    for (let i = 0; i < 4; i++) {
      shaBlock[56 + i] = high >>> (24 - 8 * i);
      shaBlock[60 + i] = low >>> (24 - 8 * i);
    }
    sha256Compress(shaBlock, 0);
    for (let i = 0; i < 32; i++) out[i] = shaState[i >> 2] >>> (24 - 8 * (i & 3));
    return out;
  }

  function sha256Compress(bytes, offset) {
    const w = shaWords;
    for (let i = 0; i < 16; i++) {
      const j = offset + 4 * i;
      w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = shaState[0];
    let b = shaState[1];
    let c = shaState[2];
    let d = shaState[3];
    let e = shaState[4];
    let f = shaState[5];
    let g = shaState[6];
    let h = shaState[7];
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + s1 + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    shaState[0] += a;
    shaState[1] += b;
    shaState[2] += c;
    shaState[3] += d;
    shaState[4] += e;
    shaState[5] += f;
    shaState[6] += g;
    shaState[7] += h;
  }

  const hashInput = new Uint8Array(LOCAL_HASH_MAX_BYTES);
  const hmacPad = new Uint8Array(64);
  const digestScratch = new Uint8Array(32);

  /**
   * `data` (a string or bytes) as bytes for local hashing, in `hashInput` when it is a string;
   * null when it is too large to hash here.
   */
  function localHashBytes(name, label, data) {
    if (typeof data === 'string') {
      if (data.length * 3 > LOCAL_HASH_MAX_BYTES) return null;
      const length = utf8EncodeInto(data, hashInput);
      return { bytes: hashInput, length };
    }
    if (!(data instanceof Uint8Array))
      fail(`${name}: ${label} must be a string or bytes, got ${typeName(data)}`);
    return data.length > LOCAL_HASH_MAX_BYTES ? null : { bytes: data, length: data.length };
  }

  /** HMAC-SHA256 (RFC 2104) of `message` (in bytes) under the key already XORed into hmacPad. */
  function hmacSha256Into(out, message) {
    for (let i = 0; i < 64; i++) hmacPad[i] ^= 0x36;
    sha256Start();
    sha256Update(hmacPad, 64);
    sha256Update(message.bytes, message.length);
    sha256Finish(digestScratch);
    for (let i = 0; i < 64; i++) hmacPad[i] ^= 0x36 ^ 0x5c;
    sha256Start();
    sha256Update(hmacPad, 64);
    sha256Update(digestScratch, 32);
    return sha256Finish(out);
  }

  /** Puts the HMAC key, zero-padded to a block (hashed first if longer), into hmacPad. */
  function loadHmacKey(key) {
    hmacPad.fill(0);
    if (key.length > 64) {
      sha256Start();
      sha256Update(key.bytes, key.length);
      sha256Finish(hmacPad);
    } else {
      hmacPad.set(key.length === key.bytes.length ? key.bytes : key.bytes.subarray(0, key.length));
    }
  }

  /** Wraps the host's version of a SHA-256 built-in, answering small inputs here. */
  function localSha256(name, hostVersion) {
    const wrapped = (data) => {
      const input = localHashBytes(name, 'data', data);
      if (input === null) return hostVersion(data);
      sha256Start();
      sha256Update(input.bytes, input.length);
      return hexEncode(sha256Finish(digestScratch));
    };
    defineProperty(wrapped, 'name', { value: name });
    return wrapped;
  }

  function localHmacSha256(name, hostVersion, asBytes) {
    const wrapped = (key, data) => {
      // The key goes into hmacPad before the data is encoded: both may use hashInput.
      const keyInput = localHashBytes(name, 'key', key);
      if (keyInput === null) return hostVersion(key, data);
      loadHmacKey(keyInput);
      const message = localHashBytes(name, 'data', data);
      if (message === null) return hostVersion(key, data);
      const mac = hmacSha256Into(asBytes ? new Uint8Array(32) : digestScratch, message);
      return asBytes ? mac : hexEncode(mac);
    };
    defineProperty(wrapped, 'name', { value: name });
    return wrapped;
  }

  // ------------------------------------------------------------------------------------------
  // Built-ins that run on the host

  const ARG_EXPECTATIONS = {
    options: 'an object',
    length: 'a number',
    name: 'a string',
  };

  /** Bytes as a latin1 string, the form in which they cross to the host. */
  function binaryString(bytes) {
    let out = '';
    for (let i = 0; i < bytes.length; i += 8192) {
      out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    }
    return out;
  }

  function bytesFromBinary(text) {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  /**
   * The longest argument a host built-in takes, in characters or bytes: data up to the size of the
   * largest request body (and its base64), keys, IVs, PEMs and names far less. A string built by
   * doubling stays small inside the isolate but is copied whole to the host, where hashing or
   * encrypting it would hold up every request on the node: the length is checked here, before it
   * crosses (reading it does not flatten the string).
   */
  const DATA_ARG_MAX = 16 * 1024 * 1024;
  const SMALL_ARG_MAX = 64 * 1024;
  const DATA_LABELS = new Set(['data', 'plaintext', 'aad']);

  function checkArgLength(name, label, length) {
    const max = DATA_LABELS.has(label) ? DATA_ARG_MAX : SMALL_ARG_MAX;
    if (length > max) fail(`${name}: ${label} is ${length} long; at most ${max} characters or bytes`);
  }

  /** Checks one argument against its spec and puts it in `call` (args[] and the binary mask). */
  function addHostArg(name, { optional, label }, value, call) {
    let arg = value;
    if (optional && (value === undefined || value === null)) {
      arg = undefined;
    } else if (label === 'options') {
      // A plain copy: only data crosses to the host, never the script's own objects.
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        arg = fail(argError(name, label, value));
      else arg = jsonParse(jsonStringify(value));
    } else if (label === 'length') {
      if (typeof value !== 'number') fail(argError(name, label, value));
    } else if (label === 'name') {
      if (typeof value !== 'string') fail(argError(name, label, value));
      checkArgLength(name, label, value.length);
    } else if (value instanceof Uint8Array) {
      checkArgLength(name, label, value.length);
      call.binary |= 1 << call.args.length;
      arg = binaryString(value);
    } else if (typeof value !== 'string') {
      fail(argError(name, label, value));
    } else {
      checkArgLength(name, label, value.length);
    }
    call.args.push(arg);
  }

  function argError(name, label, value) {
    return `${name}: ${label} must be ${ARG_EXPECTATIONS[label] ?? 'a string or bytes'}, got ${typeName(value)}`;
  }

  function hostBuiltin(index, name, specTexts, returns) {
    // "key", "iv?", ...: parsed once here rather than on every call.
    const specs = specTexts.map((spec) =>
      freeze({ optional: spec.endsWith('?'), label: spec.endsWith('?') ? spec.slice(0, -1) : spec }),
    );
    const builtin = (...given) => {
      const call = { args: [], binary: 0 };
      for (let i = 0; i < specs.length; i++) addHostArg(name, specs[i], given[i], call);
      const inv = enter(name);
      const a = call.args;
      // Only the arguments the built-in takes: each one crossing the boundary costs time.
      let result;
      if (a.length <= 1) result = hostCall(index, inv.id, call.binary, a[0]);
      else if (a.length === 2) result = hostCall(index, inv.id, call.binary, a[0], a[1]);
      else result = hostCall(index, inv.id, call.binary, a[0], a[1], a[2], a[3]);
      if (typeof result === 'object' && result !== null) {
        const err = builtinError(String(result.message), result.code);
        if (result.abort === true) inv.aborted = err;
        throw err;
      }
      return returns === 'bytes' ? bytesFromBinary(result) : result;
    };
    defineProperty(builtin, 'name', { value: name });
    return builtin;
  }

  // ------------------------------------------------------------------------------------------
  // Built-ins that run here

  function logText(value) {
    if (typeof value === 'string') return value;
    if (value === undefined) return 'undefined';
    if (value instanceof Uint8Array) return `<${value.length} bytes ${hexEncode(value)}>`;
    try {
      const json = jsonStringify(value);
      return json === undefined ? String(value) : json;
    } catch {
      return '[value that cannot be shown]';
    }
  }

  function log(...parts) {
    const inv = enter('log');
    if (inv.logs.length >= config.maxLogLines) {
      inv.logsDropped++;
      return;
    }
    let line = parts.map(logText).join(' ');
    if (line.length > config.maxLogLineChars) line = `${line.slice(0, config.maxLogLineChars)}... (cut)`;
    inv.logs.push(line);
  }

  function tokenSave(token, expireTime) {
    const inv = enter('token_save');
    if (typeof token !== 'string' || token === '') {
      fail(`token_save: token must be a non-empty string, got ${typeName(token)}`);
    }
    const expiry = expireTime ?? null;
    if (expiry !== null && typeof expiry !== 'number' && typeof expiry !== 'string') {
      fail('token_save: expireTime must be epoch seconds, epoch milliseconds or an ISO-8601 string');
    }
    inv.token = token;
    inv.tokenOps.push({ op: 'save', token, expireTime: expiry });
  }

  function tokenDelete() {
    const inv = enter('token_delete');
    inv.token = null;
    inv.tokenOps.push({ op: 'delete' });
  }

  function headerObjectFor(name, headers) {
    const out = Object.create(null); // so that a header named "__proto__" stays a header
    if (headers === undefined || headers === null) return out;
    if (typeof headers !== 'object' || Array.isArray(headers)) fail(`${name}: headers must be an object`);
    for (const key of objectKeys(headers)) {
      const value = headers[key];
      if (value === undefined || value === null) continue;
      out[key] = typeof value === 'string' ? value : String(value);
    }
    return out;
  }

  /**
   * In a sync run this only flags the run and throws: the host discards the run and repeats it in
   * async mode, where the call blocks this isolate's thread until the host's request finishes.
   */
  function httpPostJson(url, body, headers) {
    const inv = enter('http_post_json');
    if (inv.mode === 'sync') {
      inv.needsAsync = true;
      throw ASYNC_NEEDED;
    }
    checkArgLength('http_post_json', 'url', stringArg('http_post_json', 'url', url).length);
    inv.httpCalls++;
    if (inv.httpCalls > config.maxHttpCalls)
      fail(`http_post_json: at most ${config.maxHttpCalls} calls per run`);
    let bodyJson;
    try {
      bodyJson = jsonStringify(body === undefined ? null : body);
    } catch {
      fail('http_post_json: body cannot be written as JSON');
    }
    const headerJson = jsonStringify(headerObjectFor('http_post_json', headers));
    checkArgLength('http_post_json', 'data', bodyJson.length);
    checkArgLength('http_post_json', 'headers', headerJson.length);
    const reply = jsonParse(
      apply(applySyncPromise, httpRef, [undefined, [inv.id, url, bodyJson, headerJson]]),
    );
    if (reply.ok === true) return reply.text;
    const err = builtinError(String(reply.message), reply.code, reply.hostErrorId);
    if (reply.abort === true) inv.aborted = err;
    throw err;
  }

  function responseOf(name) {
    const inv = enter(name);
    if (inv.response === null) fail(`${name}: only available in response scripts`);
    return inv.response;
  }

  function respHeader(name) {
    const response = responseOf('respHeader');
    const value = response.headers.get(stringArg('respHeader', 'name', name).toLowerCase());
    return value === undefined ? null : value;
  }

  const LOCAL_BUILTINS = {
    base64_encode: (data) => base64Encode(bytesOf('base64_encode', 'data', data), BASE64, true),
    base64_decode: (text) => base64Decode('base64_decode', text, BASE64_DIGITS),
    base64url_encode: (data) => base64Encode(bytesOf('base64url_encode', 'data', data), BASE64URL, false),
    base64url_decode: (text) => base64Decode('base64url_decode', text, BASE64URL_DIGITS),
    hex_encode: (data) => hexEncode(bytesOf('hex_encode', 'data', data)),
    hex_decode: hexDecode,
    utf8_encode: (text) => utf8Encode(stringArg('utf8_encode', 'text', text)),
    utf8_decode: (bytes) =>
      bytes instanceof Uint8Array
        ? utf8Decode(bytes)
        : fail(`utf8_decode: input must be bytes, got ${typeName(bytes)}`),
    url_encode: (data) => percentEncode(bytesOf('url_encode', 'data', data), isUnreserved, false),
    form_encode: formEncode,
    date_iso8601: (ms) => dateArg('date_iso8601', ms).toISOString(),
    date_rfc1123: (ms) => dateArg('date_rfc1123', ms).toUTCString(),
    date_amz: amzDate,
    now_ms: () => Date.now(),
    token_load: () => enter('token_load').token,
    token_save: tokenSave,
    token_delete: tokenDelete,
    http_post_json: httpPostJson,
    log,
    respStatus: () => responseOf('respStatus').status,
    respHeader,
    respRaw: () => responseOf('respRaw').raw,
  };

  // ------------------------------------------------------------------------------------------
  // Script arguments

  const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

  function headerName(method, name) {
    if (typeof name !== 'string' || !HEADER_NAME.test(name)) {
      fail(
        `reqHeaders.${method}: ${typeof name === 'string' ? 'invalid header name' : `name must be a string, got ${typeName(name)}`}`,
      );
    }
    return name;
  }

  function headerValue(name, value) {
    const text = typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
    if (typeof text !== 'string')
      fail(`reqHeaders.set: value of ${name} must be a string, got ${typeName(value)}`);
    if (/[\r\n\0]/.test(text)) fail(`reqHeaders.set: value of ${name} contains a line break or NUL`);
    return text;
  }

  function paramText(method, value) {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    return fail(`reqParams.${method}: value must be a string or number, got ${typeName(value)}`);
  }

  /** The request of the run in progress; argument objects kept from an earlier run land here. */
  function currentRequest(method) {
    const inv = enter(method);
    if (inv.request === null) fail(`${method}: only available in request scripts`);
    return inv.request;
  }

  const reqHeaders = freeze({
    get: (name) =>
      currentRequest('reqHeaders.get').headers.get(headerName('get', name).toLowerCase())?.[1] ?? null,
    set: (name, value) => {
      const headers = currentRequest('reqHeaders.set').headers;
      headers.set(headerName('set', name).toLowerCase(), [name, headerValue(name, value)]);
    },
    delete: (name) => {
      currentRequest('reqHeaders.delete').headers.delete(headerName('delete', name).toLowerCase());
    },
    keys: () => [...currentRequest('reqHeaders.keys').headers.values()].map((entry) => entry[0]),
    getURI: () => currentRequest('reqHeaders.getURI').uri,
    setURI: (uri) => {
      currentRequest('reqHeaders.setURI').uri = stringArg('reqHeaders.setURI', 'uri', uri);
    },
    getMethod: () => currentRequest('reqHeaders.getMethod').method,
  });

  /** Name/value pairs: get finds the first, set replaces all (in the first one's place), delete
   * removes all. */
  function pairGet(pairs, name) {
    for (const pair of pairs) if (pair[0] === name) return pair[1];
    return undefined;
  }

  function pairSet(pairs, name, value) {
    const first = pairs.findIndex((p) => p[0] === name);
    if (first === -1) {
      pairs.push([name, value]);
      return;
    }
    pairs[first] = [name, value];
    for (let i = pairs.length - 1; i > first; i--) if (pairs[i][0] === name) pairs.splice(i, 1);
  }

  function pairDelete(pairs, name) {
    for (let i = pairs.length - 1; i >= 0; i--) if (pairs[i][0] === name) pairs.splice(i, 1);
  }

  function pairKeys(pairs) {
    return [...new Set(pairs.map((p) => p[0]))];
  }

  const reqParams = freeze({
    get: (name) => pairGet(currentRequest('reqParams.get').query, name) ?? null,
    set: (name, value) => {
      const query = currentRequest('reqParams.set').query;
      pairSet(query, stringArg('reqParams.set', 'name', name), paramText('set', value));
    },
    delete: (name) => pairDelete(currentRequest('reqParams.delete').query, name),
    keys: () => pairKeys(currentRequest('reqParams.keys').query),
  });

  function isPlainObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }

  /**
   * The body's fields when it is a JSON object or a form (they behave alike), else null. Setting
   * a field on an empty body makes it a JSON object.
   */
  function bodyFields(method) {
    const request = currentRequest(`reqBody.${method}`);
    if (request.body.kind === 'none' && method === 'set') request.body = { kind: 'json', value: {} };
    const body = request.body;
    if (body.kind === 'form') return { form: body.fields, object: null };
    if (body.kind === 'json' && isPlainObject(body.value)) return { form: null, object: body.value };
    if (method === 'set')
      fail(`reqBody.set: the body is ${describeBody(body)}, not a JSON object or form; use setRaw()`);
    return null;
  }

  function bodyGet(key) {
    const fields = bodyFields('get');
    if (fields === null) return undefined;
    if (fields.form !== null) return pairGet(fields.form, key);
    return Object.hasOwn(fields.object, key) ? fields.object[key] : undefined;
  }

  function bodyKeys() {
    const fields = bodyFields('keys');
    if (fields === null) return [];
    return fields.form !== null ? pairKeys(fields.form) : objectKeys(fields.object);
  }

  /** Keys sorted by UTF-16 code unit; key=value joined by &; null, undefined and '' skipped;
   * objects as JSON; nothing URL-encoded. */
  function buildSignStr() {
    const fields = bodyFields('buildSignStr');
    if (fields === null) return '';
    const { form, object } = fields;
    const keys = form !== null ? pairKeys(form) : objectKeys(object);
    const parts = [];
    for (const key of keys.sort()) {
      const value = form !== null ? pairGet(form, key) : object[key];
      if (value === undefined || value === null || value === '') continue;
      parts.push(`${key}=${fieldText(value)}`);
    }
    return parts.join('&');
  }

  const reqBody = freeze({
    get: bodyGet,
    keys: bodyKeys,
    set: (key, value) => {
      const name = stringArg('reqBody.set', 'key', key);
      const fields = bodyFields('set');
      if (fields.form !== null)
        pairSet(fields.form, name, value === undefined || value === null ? '' : fieldText(value));
      // A plain assignment for a field the object has or Object.prototype lacks (the common case,
      // and V8's fast one); otherwise defineProperty, so that a key like "__proto__" or "toString"
      // becomes a field instead of reaching the (frozen) prototype.
      else if (hasOwn(fields.object, name) || !(name in objectPrototype)) fields.object[name] = value;
      else
        defineProperty(fields.object, name, { value, writable: true, enumerable: true, configurable: true });
    },
    delete: (key) => {
      const fields = bodyFields('delete');
      if (fields === null) return;
      if (fields.form !== null) pairDelete(fields.form, key);
      else delete fields.object[key];
    },
    buildSignStr,
    raw: () => rawBody(currentRequest('reqBody.raw').body),
    setRaw: (text) => {
      currentRequest('reqBody.setRaw').body = {
        kind: 'raw',
        text: stringArg('reqBody.setRaw', 'text', text),
      };
    },
  });

  function describeBody(body) {
    if (body.kind === 'json')
      return Array.isArray(body.value) ? 'a JSON array' : `JSON ${typeName(body.value)}`;
    return body.kind === 'raw' ? 'raw text' : 'empty';
  }

  function rawBody(body) {
    if (body.kind === 'json') return jsonStringify(body.value) ?? '';
    if (body.kind === 'form') return formEncode(body.fields);
    if (body.kind === 'raw') return body.text;
    return '';
  }

  // ------------------------------------------------------------------------------------------
  // Runs

  // The script's arguments after the request objects (AppKey, AesKey, AesIV, PrefixUrl,
  // TokenUrl), parsed again only when the host sends different text (new secrets).
  let argsText = null;
  let requestArgs = null;
  let responseArgs = null;

  function loadArgs(argsJson) {
    if (argsJson === argsText) return;
    const values = jsonParse(argsJson).map((value) => (value === null ? undefined : value));
    requestArgs = [reqHeaders, reqParams, reqBody, ...values];
    responseArgs = [null, ...values];
    argsText = argsJson;
  }

  function runRequest(inv, input) {
    const headers = new Map();
    for (const name of objectKeys(input.headers))
      headers.set(name.toLowerCase(), [name, input.headers[name]]);
    const request = { method: input.method, uri: input.uri, headers, query: input.query, body: input.body };
    inv.request = request;
    apply(scriptFunction, undefined, requestArgs);
    // A null-prototype object, so that a header named "__proto__" stays a header.
    const headersOut = Object.create(null);
    for (const [name, value] of headers.values()) headersOut[name] = value;
    return {
      ok: true,
      method: request.method,
      uri: request.uri,
      headers: headersOut,
      query: request.query,
      body: request.body,
    };
  }

  function runResponse(inv, input, raw, jsonText) {
    const headers = new Map();
    for (const name of objectKeys(input.headers)) headers.set(name.toLowerCase(), input.headers[name]);
    inv.response = { status: input.status, headers, raw };
    // parseRaw: the host did not parse the body; raw is parsed here once (null if it is not JSON),
    // and the script's changes are judged against it written back as JSON.
    let respBody = null;
    let before = jsonText;
    if (input.parseRaw && raw !== null) {
      try {
        respBody = jsonParse(raw);
        before = jsonStringify(respBody);
      } catch {
        respBody = null;
        before = null;
      }
    } else if (jsonText !== null) {
      respBody = jsonParse(jsonText);
    }
    responseArgs[0] = respBody;
    try {
      apply(scriptFunction, undefined, responseArgs);
    } finally {
      responseArgs[0] = null;
    }
    const parsed = before !== null;
    if (before === null) return { ok: true, changed: false, bodyText: null, parsed };
    const after = jsonStringify(respBody);
    return after === before
      ? { ok: true, changed: false, bodyText: null, parsed }
      : { ok: true, changed: true, bodyText: after, parsed };
  }

  const SCRIPT_FRAME = /\b(?:request|response)\.js:(\d+):(\d+)/;

  function errorText(err) {
    if (err instanceof Error) {
      const name = String(err.name);
      const message = String(err.message);
      if (builtinErrors.has(err) || name === 'Error') return message;
      return message === '' ? name : `${name}: ${message}`;
    }
    if (typeof err === 'string') return err;
    return logText(err);
  }

  function describeFailure(err) {
    const info = builtinErrors.get(err) ?? { code: 'KG_SCRIPT_ERROR', hostErrorId: null };
    let message;
    let frame = null;
    try {
      message = errorText(err);
      if (err instanceof Error && typeof err.stack === 'string') frame = SCRIPT_FRAME.exec(err.stack);
    } catch {
      message = 'the script threw a value that cannot be shown';
    }
    if (message.length > config.maxErrorChars) message = `${message.slice(0, config.maxErrorChars)}...`;
    return {
      ok: false,
      message,
      code: info.code,
      hostErrorId: info.hostErrorId,
      line: frame === null ? null : Number(frame[1]),
      column: frame === null ? null : Number(frame[2]),
    };
  }

  function run(mode, id, kind, inputJson, argsJson, raw, jsonText) {
    // An earlier run left a global that cannot be deleted: the host replaces this isolate and
    // repeats the run in a fresh one.
    if (!clearScriptGlobals()) return STALE_ISOLATE_RESULT;
    const input = jsonParse(inputJson);
    // A request's JSON body may come as its own text (raw): parsed here, before the script runs.
    if (kind === 'request' && raw !== null) {
      try {
        input.body.value = jsonParse(raw);
      } catch {
        return BAD_JSON_BODY_RESULT;
      }
    }
    loadArgs(argsJson);
    const inv = {
      id,
      mode,
      active: true,
      needsAsync: false,
      aborted: null,
      token: input.token,
      logs: [],
      logsDropped: 0,
      tokenOps: [],
      httpCalls: 0,
      request: null,
      response: null,
    };
    current = inv;
    let outcome;
    try {
      outcome = kind === 'request' ? runRequest(inv, input) : runResponse(inv, input, raw, jsonText);
    } catch (err) {
      outcome = inv.needsAsync ? null : describeFailure(err);
    } finally {
      inv.active = false;
      current = null;
    }
    if (inv.needsAsync) return NEEDS_ASYNC_RESULT;
    if (inv.logsDropped > 0) inv.logs.push(`(${inv.logsDropped} more log lines dropped)`);
    outcome.logs = inv.logs;
    outcome.tokenOps = inv.tokenOps;
    try {
      // A JSON body (a request's, or a response's the script changed) goes after the outcome as its
      // own text (JSON text never holds a raw line break): the host sends it on as it is, and it
      // is not escaped into the outcome and parsed out of it again.
      let bodyText = null;
      if (outcome.ok === true && kind === 'response') {
        bodyText = outcome.bodyText;
        outcome.bodyText = undefined;
      } else if (outcome.ok === true && outcome.body.kind === 'json') {
        bodyText = jsonStringify(outcome.body.value) ?? 'null';
        outcome.body = null;
      }
      const text = jsonStringify(outcome);
      return bodyText === null ? text : `${text}\n${bodyText}`;
    } catch (err) {
      // A body value the script set cannot be written as JSON (a BigInt, a cycle, a throwing toJSON).
      const failure = describeFailure(err);
      failure.message = `the script left a body that cannot be written as JSON: ${failure.message}`;
      failure.logs = inv.logs;
      failure.tokenOps = [];
      return jsonStringify(failure);
    }
  }

  /**
   * Takes the value the tenant's source evaluated to. Answers with its exact source text, which
   * the host compares with the whole source to make sure nothing else was in it.
   */
  function install(candidate) {
    if (typeof candidate !== 'function' || getPrototypeOf(candidate) !== Function.prototype) {
      return jsonStringify({ ok: false });
    }
    const text = apply(functionToString, candidate, []);
    if (text.startsWith('class')) return jsonStringify({ ok: false });
    freeze(candidate);
    if (candidate.prototype !== undefined) freeze(candidate.prototype);
    scriptFunction = candidate;
    return jsonStringify({ ok: true, text });
  }

  // ------------------------------------------------------------------------------------------
  // Set-up

  for (const name of REMOVED_GLOBALS) delete globalThis[name];
  const globals = { ...LOCAL_BUILTINS };
  config.hostBuiltins.forEach(([name, specs, returns], index) => {
    globals[name] = hostBuiltin(index, name, specs, returns);
  });
  globals.sha256 = localSha256('sha256', globals.sha256);
  globals.hmac_sha256 = localHmacSha256('hmac_sha256', globals.hmac_sha256, false);
  globals.hmac_sha256_bytes = localHmacSha256('hmac_sha256_bytes', globals.hmac_sha256_bytes, true);
  globals.console = freeze({ log, info: log, warn: log, error: log, debug: log });
  for (const name of objectKeys(globals)) {
    defineProperty(globalThis, name, {
      value: globals[name],
      writable: false,
      enumerable: false,
      configurable: false,
    });
  }
  guardGlobalObject();
  hardenIntrinsics();
  lockGlobalProperties();
  bootGlobalPrototype = getPrototypeOf(globalThis);

  return freeze({ install, run });
});
