/**
 * Every script built-in, checked against node:crypto, Buffer and published test vectors, run the
 * way a tenant script runs them (inside the isolate, through the bootstrap).
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  hash,
  privateDecrypt,
  sign,
  verify,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeygateError } from '../errors.ts';
import { createSandbox, type Sandbox } from './index.ts';
import { evaluator, fixture, SECRETS, testHost } from './test-support.ts';

let sandbox: Sandbox;
let run: (expression: string) => Promise<unknown>;

beforeAll(async () => {
  // Generous CPU time: these tests are about results, and the machine may be busy.
  sandbox = createSandbox({ cpuMs: 2000 });
  const evaluate = await evaluator(sandbox);
  run = (expression) => evaluate(expression);
});

afterAll(() => sandbox.dispose());

/** Runs `expression` and returns the error it fails with. */
async function failure(expression: string): Promise<{ code: string; message: string }> {
  try {
    await run(expression);
  } catch (err) {
    if (isKeygateError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error(`expected ${expression} to fail`);
}

const hex = (text: string) => Buffer.from(text, 'hex');
const bytesLiteral = (buf: Uint8Array) => `hex_decode('${Buffer.from(buf).toString('hex')}')`;
/** Deterministic test data, built the same way here and inside the script. */
const patternBytes = (length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + 7) & 255));
const patternScript = (length: number) =>
  `(function () { var d = new Uint8Array(${length}); for (var i = 0; i < d.length; i++) d[i] = (i * 31 + 7) & 255; return d; })()`;

describe('hashes', () => {
  it.each([
    ['md5', '', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['sha1', 'abc', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
    ['sha256', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'sha512',
      'abc',
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    ],
    // GB/T 32905-2016 example 1
    ['sm3', 'abc', '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0'],
  ])('%s(%j) matches the published vector', async (name, input, expected) => {
    expect(await run(`${name}('${input}')`)).toBe(expected);
  });

  it('hashes strings as UTF-8 and accepts bytes', async () => {
    const text = 'héllo ✓ 𝄞';
    expect(await run(`sha256('${text}')`)).toBe(hash('sha256', text, 'hex'));
    expect(await run(`md5(utf8_encode('${text}'))`)).toBe(hash('md5', text, 'hex'));
  });

  // SHA-256 runs inside the isolate for small inputs and on the host for large ones.
  it('sha256 matches node:crypto at block boundaries and on both sides of the size cut-over', async () => {
    for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 16384, 16385, 40000]) {
      expect(await run(`sha256(${patternScript(length)})`), `length ${length}`).toBe(
        hash('sha256', patternBytes(length), 'hex'),
      );
    }
  });

  it('names the built-in when given something that is not text or bytes', async () => {
    expect(await failure('sha256(42)')).toEqual({
      code: 'KG_SCRIPT_ERROR',
      message: expect.stringContaining('sha256: data must be a string or bytes, got number'),
    });
    expect((await failure('md5({})')).message).toContain('md5: data must be a string or bytes, got object');
  });
});

describe('HMAC', () => {
  // RFC 4231 test cases 1, 2 and 6 (a key longer than the block), RFC 2202 case 1 for SHA-1.
  const case1 = { key: '0b'.repeat(20), data: Buffer.from('Hi There').toString('hex') };
  const case2 = {
    key: Buffer.from('Jefe').toString('hex'),
    data: Buffer.from('what do ya want for nothing?').toString('hex'),
  };
  const case6 = {
    key: 'aa'.repeat(131),
    data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First').toString('hex'),
  };

  it.each([
    ['hmac_sha256', case1, 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['hmac_sha256', case2, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    ['hmac_sha256', case6, '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
    [
      'hmac_sha512',
      case1,
      '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854',
    ],
    ['hmac_sha1', case1, 'b617318655057264e28bc0b6fb378c8ef146be00'],
  ])('%s matches RFC test vector %#', async (name, { key, data }, expected) => {
    expect(await run(`${name}(hex_decode('${key}'), hex_decode('${data}'))`)).toBe(expected);
  });

  it('hmac_sm3 and the _bytes variants match node:crypto', async () => {
    expect(await run(`hmac_sm3('k', 'data')`)).toBe(createHmac('sm3', 'k').update('data').digest('hex'));
    for (const algorithm of ['sha1', 'sha256', 'sha512', 'sm3']) {
      expect(await run(`hmac_${algorithm}_bytes('key', 'data')`)).toEqual({
        hex: createHmac(algorithm, 'key').update('data').digest('hex'),
      });
    }
  });

  it('hmac_sha256 matches node:crypto for empty, long and string keys and large data', async () => {
    for (const [key, length] of [
      ["''", 10],
      ["'secret'", 0],
      [patternScript(64), 64],
      [patternScript(65), 200],
      ["'é-key'", 20000],
    ] as const) {
      const keyBytes = key.startsWith("'")
        ? Buffer.from(key.slice(1, -1))
        : patternBytes(Number(/Uint8Array\((\d+)\)/.exec(key)?.[1]));
      expect(await run(`hmac_sha256(${key}, ${patternScript(length)})`)).toBe(
        createHmac('sha256', keyBytes).update(patternBytes(length)).digest('hex'),
      );
    }
  });

  it('chains raw bytes for an AWS SigV4 signing key (AWS documentation example)', async () => {
    const key = await run(`
      var kDate = hmac_sha256_bytes('AWS4' + 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20120215');
      var kRegion = hmac_sha256_bytes(kDate, 'us-east-1');
      var kService = hmac_sha256_bytes(kRegion, 'iam');
      hmac_sha256_bytes(kService, 'aws4_request');
    `);
    expect(key).toEqual({ hex: 'f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d' });
  });
});

describe('AES-CBC', () => {
  const key16 = Buffer.from(SECRETS.AesKey);
  const iv = Buffer.from(SECRETS.AesIV);

  function nodeCbc(key: Buffer, data: Buffer, padding = true): Buffer {
    const cipher = createCipheriv(`aes-${key.length * 8}-cbc`, key, iv);
    cipher.setAutoPadding(padding);
    return Buffer.concat([cipher.update(data), cipher.final()]);
  }

  it('aes_cbc_pkcs5_encrypt matches node:crypto for every key size and data length', async () => {
    for (const keyLength of [16, 24, 32]) {
      const key = patternBytes(keyLength);
      // 2000 bytes is above the size where encryption stops chaining blocks itself.
      for (const length of [0, 1, 15, 16, 17, 100, 2000]) {
        const out = await run(
          `aes_cbc_pkcs5_encrypt(${bytesLiteral(key)}, ${patternScript(length)}, '${SECRETS.AesIV}')`,
        );
        expect(out, `key ${keyLength}, length ${length}`).toEqual({
          hex: nodeCbc(key, patternBytes(length)).toString('hex'),
        });
      }
    }
  });

  it("a key's live cipher context matches fresh node:crypto contexts across interleaved calls", async () => {
    // The host keeps one OpenSSL context per key and carries CBC state between calls; every
    // message must still come out as if encrypted on its own.
    const out = (await run(`(function () {
      var results = [];
      for (var n = 0; n < 60; n++) {
        var iv = new Uint8Array(16), data = new Uint8Array((n * 7) % 70);
        for (var i = 0; i < 16; i++) iv[i] = (n * 13 + i) & 255;
        for (var j = 0; j < data.length; j++) data[j] = (n + j * 5) & 255;
        var sealed = aes_cbc_pkcs5_encrypt('${SECRETS.AesKey}', data, iv);
        var opened = aes_cbc_pkcs5_decrypt_bytes('${SECRETS.AesKey}', sealed, iv);
        results.push(hex_encode(sealed) + ':' + hex_encode(opened));
      }
      return results;
    })()`)) as string[];
    out.forEach((line, n) => {
      const iv = Buffer.from(Array.from({ length: 16 }, (_, i) => (n * 13 + i) & 255));
      const data = Buffer.from(Array.from({ length: (n * 7) % 70 }, (_, j) => (n + j * 5) & 255));
      const cipher = createCipheriv('aes-128-cbc', key16, iv);
      const expected = Buffer.concat([cipher.update(data), cipher.final()]).toString('hex');
      expect(line, `message ${n}`).toBe(`${expected}:${data.toString('hex')}`);
    });
  });

  it('encrypts text as UTF-8 with text or byte keys, keeping keys that look alike apart', async () => {
    // The host caches keys given as text under the text and keys given as bytes under their
    // latin1 form: "é..." as text is UTF-8 (0xc3 0xa9 ...), and "Ã©..." is that same latin1 form
    // as text, whose UTF-8 is 18 bytes and must still be refused.
    const textKey = 'é0123456789abcd';
    const keyBytes = Buffer.from(textKey, 'utf8');
    expect(keyBytes.length).toBe(16);
    const lookalike = keyBytes.toString('latin1');
    for (const data of ['', 'ü', 'x'.repeat(15), `${'y'.repeat(14)}€`, '{"orderId":42,"amount":"12.50"}']) {
      const expected = nodeCbc(keyBytes, Buffer.from(data, 'utf8')).toString('hex');
      const script = `hex_encode(aes_cbc_pkcs5_encrypt('${textKey}', ${JSON.stringify(data)}, '${SECRETS.AesIV}')) + ':' +
        hex_encode(aes_cbc_pkcs5_encrypt(${bytesLiteral(keyBytes)}, ${JSON.stringify(data)}, '${SECRETS.AesIV}'))`;
      expect(await run(script), JSON.stringify(data)).toBe(`${expected}:${expected}`);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(
        (await failure(`aes_cbc_pkcs5_encrypt('${lookalike}', 'data', '${SECRETS.AesIV}')`)).message,
      ).toContain('key must be 16, 24 or 32 bytes, got 18');
    }
  });

  it('matches NIST SP 800-38A F.2.1 (CBC-AES128, no padding)', async () => {
    const out = await run(
      `aes_cbc_encrypt(hex_decode('2b7e151628aed2a6abf7158809cf4f3c'), hex_decode('6bc1bee22e409f96e93d7e117393172a'), hex_decode('000102030405060708090a0b0c0d0e0f'), { padding: 'none' })`,
    );
    expect(out).toEqual({ hex: '7649abac8119b246cee98e9b12e9197d' });
  });

  it('decrypts to a UTF-8 string, or to bytes with the _bytes variant', async () => {
    const sealed = nodeCbc(key16, Buffer.from('{"greeting":"héllo"}')).toString('base64');
    expect(
      await run(`aes_cbc_pkcs5_decrypt('${SECRETS.AesKey}', base64_decode('${sealed}'), '${SECRETS.AesIV}')`),
    ).toBe('{"greeting":"héllo"}');
    expect(
      await run(
        `aes_cbc_pkcs5_decrypt_bytes('${SECRETS.AesKey}', base64_decode('${sealed}'), '${SECRETS.AesIV}')`,
      ),
    ).toEqual({ hex: Buffer.from('{"greeting":"héllo"}').toString('hex') });
  });

  it('supports WeCom-style 32-byte PKCS#7 block padding with a key from EncodingAESKey', async () => {
    // WeCom: key = base64(EncodingAESKey + '='), 32 bytes; IV = first 16 bytes of the key.
    const encodingAesKey = Buffer.from(patternBytes(32)).toString('base64').replace(/=$/, '');
    const key = Buffer.from(`${encodingAesKey}=`, 'base64');
    const message = Buffer.from('random16bytes!!!\u0000\u0000\u0000\u0005hellowwcorp');
    const padCount = 32 - (message.length % 32);
    const expected = createCipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false);
    const padded = Buffer.concat([message, Buffer.alloc(padCount, padCount)]);
    const sealed = Buffer.concat([expected.update(padded), expected.final()]);

    const script = `
      var key = base64_decode('${encodingAesKey}' + '=');
      var iv = key.subarray(0, 16);
      var sealed = aes_cbc_encrypt(key, hex_decode('${message.toString('hex')}'), iv, { padding: { block: 32 } });
      var opened = aes_cbc_decrypt(key, sealed, iv, { padding: { block: 32 } });
      hex_encode(sealed) + ':' + hex_encode(opened);
    `;
    expect(await run(script)).toBe(`${sealed.toString('hex')}:${message.toString('hex')}`);
  });

  it('rejects a wrong key length naming the built-in and never the key', async () => {
    const err = await failure(`aes_cbc_pkcs5_encrypt('sevenk!', 'data', '${SECRETS.AesIV}')`);
    expect(err).toEqual({
      code: 'KG_SCRIPT_ERROR',
      message: expect.stringContaining('aes_cbc_pkcs5_encrypt: key must be 16, 24 or 32 bytes, got 7'),
    });
    expect(err.message).not.toContain('sevenk!');
    expect((await failure(`aes_cbc_pkcs5_encrypt('${SECRETS.AesKey}', 'data', 'short')`)).message).toContain(
      'aes_cbc_pkcs5_encrypt: iv must be 16 bytes, got 5',
    );
  });

  it('fails decryption with a wrong key without showing either key', async () => {
    const sealed = nodeCbc(key16, Buffer.from('secret payload')).toString('base64');
    const err = await failure(
      `aes_cbc_pkcs5_decrypt('ffffffffffffffff', base64_decode('${sealed}'), '${SECRETS.AesIV}')`,
    );
    expect(err.message).toContain('aes_cbc_pkcs5_decrypt: decryption failed');
    expect(err.message).not.toContain('ffffffffffffffff');
    expect(err.message).not.toContain(SECRETS.AesKey);
  });

  it('checks padding options and block alignment', async () => {
    expect(
      (await failure(`aes_cbc_encrypt('${SECRETS.AesKey}', 'abc', '${SECRETS.AesIV}', { padding: 'none' })`))
        .message,
    ).toContain("aes_cbc_encrypt: with padding 'none' the data must be a multiple of 16 bytes, got 3");
    expect(
      (await failure(`aes_cbc_encrypt('${SECRETS.AesKey}', 'abc', '${SECRETS.AesIV}', { padding: 'zero' })`))
        .message,
    ).toContain('aes_cbc_encrypt: options.padding must be');
    expect(
      (await failure(`aes_cbc_pkcs5_decrypt('${SECRETS.AesKey}', 'abc', '${SECRETS.AesIV}')`)).message,
    ).toContain('aes_cbc_pkcs5_decrypt: encrypted data must be a non-empty multiple of 16 bytes, got 3');
  });
});

describe('AES-GCM', () => {
  // The GCM specification's test case 4 (McGrew & Viega), also in NIST's GCM validation set.
  const K = 'feffe9928665731c6d6a8f9467308308';
  const IV = 'cafebabefacedbaddecaf888';
  const P =
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39';
  const A = 'feedfacedeadbeeffeedfacedeadbeefabaddad2';
  const C =
    '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091';
  const T = '5bc94fbc3221a5db94fae95ae7121a47';

  it('aes_gcm_encrypt returns ciphertext || tag for the published vector', async () => {
    expect(
      await run(
        `aes_gcm_encrypt(hex_decode('${K}'), hex_decode('${P}'), hex_decode('${IV}'), hex_decode('${A}'))`,
      ),
    ).toEqual({
      hex: C + T,
    });
  });

  it('aes_gcm_decrypt_bytes opens the published vector, aes_gcm_decrypt returns text', async () => {
    expect(
      await run(
        `aes_gcm_decrypt_bytes(hex_decode('${K}'), hex_decode('${C}${T}'), hex_decode('${IV}'), hex_decode('${A}'))`,
      ),
    ).toEqual({ hex: P });
    const key = patternBytes(32);
    const nonce = patternBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const sealed = Buffer.concat([cipher.update('héllo gcm'), cipher.final(), cipher.getAuthTag()]);
    expect(
      await run(`aes_gcm_decrypt(${bytesLiteral(key)}, ${bytesLiteral(sealed)}, ${bytesLiteral(nonce)})`),
    ).toBe('héllo gcm');
  });

  it('fails on a bad tag naming aes_gcm_decrypt and the authentication tag, never the key', async () => {
    const tampered = `${C}${T.slice(0, -2)}00`;
    const err = await failure(
      `aes_gcm_decrypt(hex_decode('${K}'), hex_decode('${tampered}'), hex_decode('${IV}'), hex_decode('${A}'))`,
    );
    expect(err.code).toBe('KG_SCRIPT_ERROR');
    expect(err.message).toContain('aes_gcm_decrypt: authentication tag does not match');
    expect(err.message).not.toContain(K);
    // Right data, wrong associated data: also a tag failure.
    expect(
      (
        await failure(
          `aes_gcm_decrypt(hex_decode('${K}'), hex_decode('${C}${T}'), hex_decode('${IV}'), 'other aad')`,
        )
      ).message,
    ).toContain('authentication tag');
  });

  it('round-trips with node:crypto in both directions', async () => {
    const sealed = (await run(`aes_gcm_encrypt('${SECRETS.AesKey}', 'payload', 'nonce-12byte', 'aad')`)) as {
      hex: string;
    };
    const raw = Buffer.from(sealed.hex, 'hex');
    const decipher = createDecipheriv(
      'aes-128-gcm',
      Buffer.from(SECRETS.AesKey),
      Buffer.from('nonce-12byte'),
    );
    decipher.setAAD(Buffer.from('aad'));
    decipher.setAuthTag(raw.subarray(-16));
    expect(Buffer.concat([decipher.update(raw.subarray(0, -16)), decipher.final()]).toString()).toBe(
      'payload',
    );
  });
});

describe('RSA', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const pkcs1Public = publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const js = (text: string) => JSON.stringify(text);

  it('rsa_sha256_sign with PKCS#8 or PKCS#1 PEM gives the signature node:crypto verifies', async () => {
    for (const pem of [pkcs8, pkcs1]) {
      const signature = (await run(`rsa_sha256_sign(${js(pem)}, 'payload é')`)) as string;
      expect(verify('sha256', Buffer.from('payload é'), publicKey, Buffer.from(signature, 'base64'))).toBe(
        true,
      );
      // PKCS#1 v1.5 signatures are deterministic.
      expect(signature).toBe(sign('sha256', Buffer.from('payload é'), privateKey).toString('base64'));
    }
    const sha1 = (await run(`rsa_sha1_sign(${js(pkcs8)}, 'payload')`)) as string;
    expect(verify('sha1', Buffer.from('payload'), publicKey, Buffer.from(sha1, 'base64'))).toBe(true);
  });

  it('rsa_sha256_verify accepts SPKI, PKCS#1 public keys and X.509 certificates', async () => {
    const signature = sign('sha256', Buffer.from('payload'), privateKey).toString('base64');
    for (const pem of [spki, pkcs1Public]) {
      expect(await run(`rsa_sha256_verify(${js(pem)}, 'payload', '${signature}')`)).toBe(true);
      expect(await run(`rsa_sha256_verify(${js(pem)}, 'payload!', '${signature}')`)).toBe(false);
    }
    const sha1 = sign('sha1', Buffer.from('payload'), privateKey).toString('base64');
    expect(await run(`rsa_sha1_verify(${js(spki)}, 'payload', '${sha1}')`)).toBe(true);
    expect(await run(`rsa_sha1_verify(${js(spki)}, 'payload', 'not-a-signature')`)).toBe(false);

    // A certificate made with the OpenSSL CLI, and its key.
    const cert = fixture('test-rsa-cert.pem');
    const certSignature = sign('sha256', Buffer.from('payload'), fixture('test-rsa-pkcs1.pem')).toString(
      'base64',
    );
    expect(await run(`rsa_sha256_verify(${js(cert)}, 'payload', '${certSignature}')`)).toBe(true);
  });

  it('rsa_oaep_encrypt output opens with node:crypto for SHA-1 and SHA-256', async () => {
    for (const oaepHash of ['sha1', 'sha256']) {
      const sealed = (await run(
        `rsa_oaep_encrypt(${js(spki)}, 'card 4111', { hash: '${oaepHash}' })`,
      )) as string;
      const opened = privateDecrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
        Buffer.from(sealed, 'base64'),
      );
      expect(opened.toString()).toBe('card 4111');
    }
    expect((await failure(`rsa_oaep_encrypt(${js(spki)}, 'x'.repeat(300))`)).message).toContain(
      'rsa_oaep_encrypt: data is 300 bytes; this key takes at most 214 with OAEP-sha1',
    );
  });

  it('explains a truncated or garbled PEM naming the built-in, never echoing the key', async () => {
    const body = pkcs8.split('\n').slice(1, -2).join('');
    const expectNoKey = (message: string) => {
      for (let i = 0; i + 16 <= body.length; i += 16) expect(message).not.toContain(body.slice(i, i + 16));
    };
    const truncated = await failure(`rsa_sha256_sign(${js(pkcs8.slice(0, 600))}, 'x')`);
    expect(truncated.message).toContain('rsa_sha256_sign: cannot read the private key: the PEM is truncated');
    expectNoKey(truncated.message);

    const lines = pkcs8.split('\n');
    lines.splice(5, 3);
    const damaged = await failure(`rsa_sha256_sign(${js(lines.join('\n'))}, 'x')`);
    expect(damaged.message).toContain('rsa_sha256_sign: cannot read the private key');
    expect(damaged.message).toMatch(/damaged or truncated/);
    expectNoKey(damaged.message);

    const garbled = await failure(`rsa_sha256_sign(${js(pkcs8.replace(/[A-Za-z]{10}/, '!!!!!!!!!!'))}, 'x')`);
    expect(garbled.message).toContain('the PEM body is not valid base64');
    expectNoKey(garbled.message);

    expect((await failure(`rsa_sha256_sign('not a key', 'x')`)).message).toContain(
      'rsa_sha256_sign: cannot read the private key: not a PEM key',
    );
  });

  it('rejects the wrong kind of key', async () => {
    expect((await failure(`rsa_sha256_sign(${js(spki)}, 'x')`)).message).toContain(
      'rsa_sha256_sign: cannot read the private key: expected a private key, got a PEM "PUBLIC KEY" block',
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecPem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect((await failure(`rsa_sha256_sign(${js(ecPem)}, 'x')`)).message).toContain(
      'rsa_sha256_sign: expected an RSA key, got ec key',
    );
    const encrypted = privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
      .toString();
    expect((await failure(`rsa_sha256_sign(${js(encrypted)}, 'x')`)).message).toContain(
      'passphrase-protected private keys are not supported',
    );
  });
});

describe('what one run can make the host do', () => {
  it('refuses a data argument over 16 MiB before it crosses (a doubled string is tiny in the isolate)', async () => {
    for (const call of [
      'sha1(s)',
      'md5(s)',
      'aes_cbc_pkcs5_encrypt("0123456789abcdef", s, "0123456789abcdef")',
    ]) {
      const { code, message } = await failure(
        `(function () { var s = 'a'; for (var i = 0; i < 25; i++) s = s + s; return ${call}; })()`,
      );
      expect(code).toBe('KG_SCRIPT_ERROR');
      expect(message).toContain('is 33554432 long; at most 16777216');
    }
    // Up to the limit it works.
    expect(
      await run(`(function () { var s = 'a'; for (var i = 0; i < 20; i++) s = s + s; return md5(s); })()`),
    ).toBe(hash('md5', 'a'.repeat(1 << 20), 'hex'));
  });

  it('refuses keys, IVs, PEMs and secret names over 64 KiB', async () => {
    const { message } = await failure(`aes_cbc_pkcs5_encrypt('k'.repeat(70000), 'data', '0123456789abcdef')`);
    expect(message).toContain('at most 65536');
    const named = await failure(
      `(function () { var s = 'a'; for (var i = 0; i < 25; i++) s = s + s; return secret(s); })()`,
    );
    expect(named.message).toContain('secret: name is 33554432 long; at most 65536');
  });

  it('refuses RSA keys above 4096 bits, which would hold the event loop', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 4160 });
    const pem = JSON.stringify(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const spki = JSON.stringify(publicKey.export({ type: 'spki', format: 'pem' }).toString());
    for (const call of [`rsa_sha256_sign(${pem}, 'x')`, `rsa_oaep_encrypt(${spki}, 'x')`]) {
      const { message } = await failure(call);
      expect(message).toContain('the RSA key has 4160 bits; at most 4096');
    }
  });
});

describe('SM2 / SM3 / SM4', () => {
  const js = (text: string) => JSON.stringify(text);

  it('sm4_ecb matches the GB/T 32907-2016 example', async () => {
    // key = plaintext = 0123456789abcdeffedcba9876543210; the first block (before padding) is
    // the standard's ciphertext.
    const out = (await run(
      `sm4_ecb_encrypt(hex_decode('0123456789abcdeffedcba9876543210'), hex_decode('0123456789abcdeffedcba9876543210'))`,
    )) as { hex: string };
    expect(out.hex.slice(0, 32)).toBe('681edf34d206965e86b3e94f536e4246');
    expect(
      await run(`sm4_ecb_decrypt(hex_decode('0123456789abcdeffedcba9876543210'), hex_decode('${out.hex}'))`),
    ).toBe(Buffer.from('0123456789abcdeffedcba9876543210', 'hex').toString('utf8'));
  });

  it('sm4_cbc matches node:crypto and round-trips', async () => {
    const key = patternBytes(16);
    const iv = patternBytes(16).reverse();
    const cipher = createCipheriv('sm4-cbc', key, iv);
    const expected = Buffer.concat([cipher.update('国密 SM4 payload'), cipher.final()]);
    expect(
      await run(`sm4_cbc_encrypt(${bytesLiteral(key)}, '国密 SM4 payload', ${bytesLiteral(iv)})`),
    ).toEqual({
      hex: expected.toString('hex'),
    });
    expect(
      await run(`sm4_cbc_decrypt(${bytesLiteral(key)}, ${bytesLiteral(expected)}, ${bytesLiteral(iv)})`),
    ).toBe('国密 SM4 payload');
    expect((await failure(`sm4_cbc_encrypt('short', 'x', ${bytesLiteral(iv)})`)).message).toContain(
      'sm4_cbc_encrypt: key must be 16 bytes, got 5',
    );
  });

  it('sm2_verify accepts a signature made by the OpenSSL CLI, and sm2_sign output verifies', async () => {
    const publicPem = fixture('test-sm2-public.pem');
    const privatePem = fixture('test-sm2-private.pem');
    const message = fixture('test-sm2-message.txt');
    const opensslSignature = fixture('test-sm2-signature.b64').trim();
    expect(await run(`sm2_verify(${js(publicPem)}, ${js(message)}, '${opensslSignature}')`)).toBe(true);
    expect(await run(`sm2_verify(${js(publicPem)}, 'other', '${opensslSignature}')`)).toBe(false);
    const signature = await run(`sm2_sign(${js(privatePem)}, 'sign me')`);
    expect(await run(`sm2_verify(${js(publicPem)}, 'sign me', '${signature}')`)).toBe(true);
  });

  it('refuses a non-SM2 key for sm2_sign', async () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    expect((await failure(`sm2_sign(${js(p256.toString())}, 'x')`)).message).toContain(
      'sm2_sign: expected an SM2 key, got ec key',
    );
  });
});

describe('encodings', () => {
  const samples = ['', 'a', 'ab', 'abc', 'héllo wörld', '✓ 𝄞 国密', '\u0000\u007f\u0080'];

  it('base64, base64url, hex and utf8 match Buffer', async () => {
    for (const text of samples) {
      const buf = Buffer.from(text);
      const literal = JSON.stringify(text);
      expect(await run(`base64_encode(${literal})`)).toBe(buf.toString('base64'));
      expect(await run(`base64url_encode(${literal})`)).toBe(buf.toString('base64url'));
      expect(await run(`hex_encode(${literal})`)).toBe(buf.toString('hex'));
      expect(await run(`utf8_encode(${literal})`)).toEqual({ hex: buf.toString('hex') });
      expect(await run(`utf8_decode(base64_decode('${buf.toString('base64')}'))`)).toBe(text);
      expect(await run(`utf8_decode(base64url_decode('${buf.toString('base64url')}'))`)).toBe(text);
      expect(await run(`utf8_decode(hex_decode('${buf.toString('hex').toUpperCase()}'))`)).toBe(text);
    }
  });

  it('base64 round-trips every byte value and tolerates missing padding and line breaks', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(await run(`base64_decode('${all.toString('base64')}')`)).toEqual({ hex: all.toString('hex') });
    expect(await run(`base64_encode(hex_decode('${all.toString('hex')}'))`)).toBe(all.toString('base64'));
    expect(await run(`utf8_decode(base64_decode('aGVsbG8'))`)).toBe('hello');
    expect(await run(`utf8_decode(base64_decode('aGVs\\nbG8='))`)).toBe('hello');
  });

  it('rejects invalid base64 and hex naming the built-in', async () => {
    expect((await failure(`base64_decode('ab$d')`)).message).toContain(
      'base64_decode: input is not valid base64 (unexpected character at position 2)',
    );
    expect((await failure(`base64_decode('abcde')`)).message).toContain(
      'base64_decode: input is not valid base64',
    );
    expect((await failure(`hex_decode('abc')`)).message).toContain(
      'hex_decode: input must have an even number',
    );
    expect((await failure(`hex_decode('zz')`)).message).toContain('hex_decode: invalid hex digit');
  });

  it('utf8_decode replaces bad sequences exactly as TextDecoder does', async () => {
    const decoder = new TextDecoder();
    const cases = [
      'c3',
      'c328',
      'e28228',
      'e282',
      'f0908c',
      'f8a1a1a1a1',
      'eda080',
      'c0af',
      'ff',
      '41e2',
      'f4908080',
      '80bf',
    ];
    for (const bytes of cases) {
      expect(await run(`utf8_decode(hex_decode('${bytes}'))`), bytes).toBe(decoder.decode(hex(bytes)));
    }
    const random = patternBytes(3000);
    expect(await run(`utf8_decode(${patternScript(3000)})`)).toBe(decoder.decode(random));
  });

  it('url_encode keeps only RFC 3986 unreserved characters', async () => {
    expect(await run(`url_encode("AZaz09-._~ !*'()/?#[]@&=+$,;:%")`)).toBe(
      'AZaz09-._~%20%21%2A%27%28%29%2F%3F%23%5B%5D%40%26%3D%2B%24%2C%3B%3A%25',
    );
    expect(await run(`url_encode('é✓')`)).toBe('%C3%A9%E2%9C%93');
  });

  it('form_encode writes application/x-www-form-urlencoded like URLSearchParams', async () => {
    const fields = { a: 'x y', 'b&c': "!*'()~é", n: 5, skip: null };
    const expected = new URLSearchParams({ a: 'x y', 'b&c': "!*'()~é", n: '5' }).toString();
    expect(await run(`form_encode(${JSON.stringify(fields)})`)).toBe(expected);
    expect(await run(`form_encode([['k', 'v 1'], ['k', 'v2']])`)).toBe('k=v+1&k=v2');
    expect(await run(`form_encode({ o: { x: 1 } })`)).toBe(`o=${encodeURIComponent('{"x":1}')}`);
  });
});

describe('dates, randomness, secrets and tokens', () => {
  it('formats dates in UTC', async () => {
    const ms = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(await run(`date_iso8601(${ms})`)).toBe('1994-11-06T08:49:37.000Z');
    expect(await run(`date_rfc1123(${ms})`)).toBe('Sun, 06 Nov 1994 08:49:37 GMT');
    expect(await run(`date_amz(${ms})`)).toBe('19941106T084937Z');
    const before = Date.now();
    const now = (await run('now_ms()')) as number;
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
    expect(await run('date_amz().length')).toBe(16);
    expect((await failure(`date_iso8601('yesterday')`)).message).toContain(
      'date_iso8601: time must be epoch milliseconds',
    );
  });

  it('uuid() is a random v4 UUID and nonce(n) n random alphanumerics', async () => {
    const [a, b] = (await run('[uuid(), uuid()]')) as string[];
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    const nonce = (await run('nonce(500)')) as string;
    expect(nonce).toMatch(/^[A-Za-z0-9]{500}$/);
    // All 62 characters show up in a long enough nonce.
    expect(new Set(nonce).size).toBeGreaterThan(55);
    expect(await run('nonce().length')).toBe(16);
    expect((await failure('nonce(0)')).message).toContain('nonce: length must be an integer from 1 to 1024');
  });

  it('secret(name) reads any provider secret; a missing one is KG_SECRET_MISSING naming it', async () => {
    expect(await run(`secret('AppSecret')`)).toBe(SECRETS.AppSecret);
    const err = await failure(`secret('RsaPrivateKey')`);
    expect(err.code).toBe('KG_SECRET_MISSING');
    expect(err.message).toContain('secret: "RsaPrivateKey" is not set for this provider');
    expect(err.message).not.toContain(SECRETS.AppSecret);
    // Names are looked up as own properties only.
    expect((await failure(`secret('constructor')`)).code).toBe('KG_SECRET_MISSING');
  });

  it('token_load sees the prefetched token, then what the run saved or deleted', async () => {
    const host = testHost({ token: 'Bearer first' });
    const evaluate = await evaluator(sandbox);
    expect(
      await evaluate(
        `[token_load(), (token_save('Bearer second', 1700000000), token_load()), (token_delete(), token_load())]`,
        host,
      ),
    ).toEqual(['Bearer first', 'Bearer second', null]);
  });
});
