/** The objects a script works on: reqHeaders, reqParams, reqBody, and the response globals. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeygateError } from '../errors.ts';
import { createSandbox, type RequestScriptInput, type Sandbox } from './index.ts';
import { jsonBody, requestInput, requestScript, responseScript, testHost } from './test-support.ts';

let sandbox: Sandbox;
let scriptCount = 0;

beforeAll(() => {
  sandbox = createSandbox({ cpuMs: 2000 });
});

afterAll(() => sandbox.dispose());

async function runRequest(body: string, input: Partial<RequestScriptInput> = {}) {
  const script = await sandbox.compile('request', requestScript(body), `api:${scriptCount++}`);
  return script.runRequest(requestInput(input), testHost());
}

async function requestError(body: string, input: Partial<RequestScriptInput> = {}): Promise<string> {
  try {
    await runRequest(body, input);
  } catch (err) {
    if (isKeygateError(err)) return err.message;
    throw err;
  }
  throw new Error('expected the script to fail');
}

describe('reqHeaders', () => {
  it('reads names case-insensitively and keeps the case of the last set', async () => {
    const result = await runRequest(
      `
      reqBody.set('seen', [reqHeaders.get('content-type'), reqHeaders.get('X-Missing'), reqHeaders.getMethod()]);
      reqHeaders.set('x-trace', 'a');
      reqHeaders.set('X-Trace', 'b');
      reqHeaders.set('X-Count', 3);
      reqHeaders.delete('CONTENT-TYPE');
      reqBody.set('names', reqHeaders.keys());
    `,
      { headers: { 'Content-Type': 'application/json', Accept: '*/*' } },
    );
    expect(jsonBody(result)['seen']).toEqual(['application/json', null, 'POST']);
    expect(result.headers).toEqual({ Accept: '*/*', 'X-Trace': 'b', 'X-Count': '3' });
    expect(jsonBody(result)['names']).toEqual(['Accept', 'X-Trace', 'X-Count']);
  });

  it('getURI is the path without the query; setURI replaces it', async () => {
    const result = await runRequest(
      `reqBody.set('before', reqHeaders.getURI()); reqHeaders.setURI(PrefixUrl + reqHeaders.getURI() + '/v2');`,
      { uri: '/orders/1', query: [['page', '2']] },
    );
    expect(jsonBody(result)['before']).toBe('/orders/1');
    expect(result.uri).toBe('https://api.acme.example/orders/1/v2');
    expect(result.query).toEqual([['page', '2']]);
  });

  it('refuses header names and values that would break the request', async () => {
    expect(await requestError(`reqHeaders.set('Bad Name', 'x');`)).toContain(
      'reqHeaders.set: invalid header name',
    );
    expect(await requestError(`reqHeaders.set('X-A', 'x\\r\\nInjected: 1');`)).toContain(
      'reqHeaders.set: value of X-A contains a line break or NUL',
    );
    expect(await requestError(`reqHeaders.set('Authorization', null);`)).toContain(
      'reqHeaders.set: value of Authorization must be a string, got null',
    );
  });
});

describe('reqParams', () => {
  it('gets the first value, sets by replacing all values in place, deletes all', async () => {
    const result = await runRequest(
      `
      reqBody.set('first', reqParams.get('tag'));
      reqBody.set('missing', reqParams.get('nope'));
      reqParams.set('tag', 'z');
      reqParams.set('page', 3);
      reqParams.delete('drop');
      reqBody.set('keys', reqParams.keys());
    `,
      {
        query: [
          ['tag', 'a'],
          ['drop', '1'],
          ['tag', 'b'],
          ['q', 'x y'],
          ['drop', '2'],
        ],
      },
    );
    expect(jsonBody(result)['first']).toBe('a');
    expect(jsonBody(result)['missing']).toBeNull();
    expect(result.query).toEqual([
      ['tag', 'z'],
      ['q', 'x y'],
      ['page', '3'],
    ]);
    expect(jsonBody(result)['keys']).toEqual(['tag', 'q', 'page']);
  });
});

describe('reqBody', () => {
  it('buildSignStr sorts keys by UTF-16 code unit, skips empty values, writes objects as JSON, encodes nothing', async () => {
    const result = await runRequest(`reqBody.set('sign', reqBody.buildSignStr());`, {
      body: {
        kind: 'json',
        value: {
          b: 'two words&more',
          a: 1,
          B: true,
          _: 'underscore',
          é: 'accent',
          '😀': 'astral',
          '\uff01': 'fullwidth',
          nul: null,
          empty: '',
          obj: { y: 2, x: [1, 'a'] },
          zero: 0,
        },
      },
    });
    expect(jsonBody(result)['sign']).toBe(
      'B=true&_=underscore&a=1&b=two words&more&obj={"y":2,"x":[1,"a"]}&zero=0&é=accent&😀=astral&！=fullwidth',
    );
  });

  it('gets, sets, deletes and lists the fields of a JSON body', async () => {
    const result = await runRequest(`
      reqBody.set('seen', [reqBody.get('data'), reqBody.get('nope') === undefined]);
      reqBody.set('__proto__', 'just a field');
      reqBody.delete('timestamp');
      reqBody.set('keys', reqBody.keys());
    `);
    expect(result.body).toEqual({
      kind: 'json',
      value: {
        data: 'hello',
        seen: ['hello', true],
        // A computed key: an own field, as the script set it, not the object's prototype.
        ['__proto__']: 'just a field',
        keys: ['data', 'seen', '__proto__'],
      },
    });
    expect(Object.keys(jsonBody(result))).toContain('__proto__');
  });

  it('sets fields named like Object.prototype members, and replaces existing ones in place', async () => {
    const result = await runRequest(`
      reqBody.set('toString', 'a field');
      reqBody.set('constructor', { nested: true });
      reqBody.set('data', 'replaced');
      reqBody.set('hasOwnProperty', 1);
      reqBody.set('sign', reqBody.buildSignStr());
    `);
    const body = jsonBody(result);
    expect(Object.keys(body)).toEqual([
      'data',
      'timestamp',
      'toString',
      'constructor',
      'hasOwnProperty',
      'sign',
    ]);
    expect(body['toString']).toBe('a field');
    expect(body['constructor']).toEqual({ nested: true });
    expect(body['sign']).toBe(
      'constructor={"nested":true}&data=replaced&hasOwnProperty=1&timestamp=1700000000&toString=a field',
    );
  });

  it('treats form fields like a JSON object and keeps them as form fields', async () => {
    const result = await runRequest(
      `
      reqBody.set('seen', reqBody.get('b'));
      reqBody.set('a', 'new');
      reqBody.set('n', 5);
      reqBody.set('o', { k: 1 });
      reqBody.delete('gone');
      reqBody.set('sign', reqBody.buildSignStr());
      reqBody.set('raw', reqBody.raw());
    `,
      {
        body: {
          kind: 'form',
          fields: [
            ['b', 'x y'],
            ['a', 'old'],
            ['gone', '1'],
            ['a', 'dup'],
          ],
        },
      },
    );
    expect(result.body.kind).toBe('form');
    const fields = result.body.kind === 'form' ? result.body.fields : [];
    expect(fields.slice(0, 5)).toEqual([
      ['b', 'x y'],
      ['a', 'new'],
      ['seen', 'x y'],
      ['n', '5'],
      ['o', '{"k":1}'],
    ]);
    expect(fields[5]).toEqual(['sign', 'a=new&b=x y&n=5&o={"k":1}&seen=x y']);
    expect(fields[6]).toEqual([
      'raw',
      'b=x+y&a=new&seen=x+y&n=5&o=%7B%22k%22%3A1%7D&sign=a%3Dnew%26b%3Dx+y%26n%3D5%26o%3D%7B%22k%22%3A1%7D%26seen%3Dx+y',
    ]);
  });

  it('reaches other bodies through raw() and setRaw()', async () => {
    const raw = await runRequest(`reqBody.setRaw('<xml>' + reqBody.raw() + '</xml>');`, {
      body: { kind: 'raw', text: 'payload' },
    });
    expect(raw.body).toEqual({ kind: 'raw', text: '<xml>payload</xml>' });
    expect(await requestError(`reqBody.set('a', 1);`, { body: { kind: 'raw', text: 'x' } })).toContain(
      'reqBody.set: the body is raw text, not a JSON object or form; use setRaw()',
    );
    expect(await requestError(`reqBody.set('a', 1);`, { body: { kind: 'json', value: [1, 2] } })).toContain(
      'the body is a JSON array',
    );
    const json = await runRequest(`reqBody.setRaw(reqBody.raw().toUpperCase());`);
    expect(json.body).toEqual({ kind: 'raw', text: '{"DATA":"HELLO","TIMESTAMP":1700000000}' });
  });

  it('turns an empty body into a JSON object when a field is set', async () => {
    const result = await runRequest(`reqBody.set('keys', reqBody.keys()); reqBody.set('a', 1);`, {
      method: 'GET',
      body: { kind: 'none' },
    });
    expect(result.body).toEqual({ kind: 'json', value: { keys: [], a: 1 } });
    const untouched = await runRequest(`reqBody.get('a');`, { body: { kind: 'none' } });
    expect(untouched.body).toEqual({ kind: 'none' });
  });
});

describe('response scripts', () => {
  it('see status, headers (any case) and the raw body; assignments to respBody reach the caller', async () => {
    const script = await sandbox.compile(
      'response',
      responseScript(`
        respBody.meta = [respStatus(), respHeader('x-signature'), respHeader('X-Missing'), respRaw().length];
        delete respBody.noise;
      `),
      'api:response',
    );
    const rawBody = '{ "ok": true, "noise": 1 }';
    const result = await script.runResponse(
      { status: 201, headers: { 'X-Signature': 'sig' }, rawBody, json: JSON.parse(rawBody) },
      testHost(),
    );
    expect(result.changed).toBe(true);
    expect(result.body).toEqual({ ok: true, meta: [201, 'sig', null, rawBody.length] });
  });

  it('may throw to reject a response', async () => {
    const script = await sandbox.compile(
      'response',
      responseScript(
        `if (!rsa_sha256_verify(secret('AppSecret'), respRaw(), respHeader('x-sig') || '')) throw new Error('bad response signature');`,
      ),
      'api:reject',
    );
    await expect(
      script.runResponse({ status: 200, headers: {}, rawBody: '{}', json: {} }, testHost()),
    ).rejects.toMatchObject({ code: 'KG_SCRIPT_ERROR' });
  });

  it('response-only globals refuse to work in a request script', async () => {
    expect(await requestError('respStatus();')).toContain('respStatus: only available in response scripts');
  });

  it('a request script cannot run as a response script or the other way round', async () => {
    const script = await sandbox.compile('request', requestScript(''), 'api:kind');
    await expect(
      script.runResponse({ status: 200, headers: {}, rawBody: '', json: null }, testHost()),
    ).rejects.toMatchObject({ code: 'KG_INTERNAL' });
  });
});
