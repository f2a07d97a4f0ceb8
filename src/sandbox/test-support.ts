/** Helpers for the sandbox tests: fixtures, a scripted host, and running expressions in a script. */
import { readFileSync } from 'node:fs';
import type {
  CompiledScript,
  RequestScriptInput,
  RequestScriptResult,
  Sandbox,
  ScriptHost,
} from './index.ts';

export function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
}

export const SEED_REQUEST = fixture('seed-request.txt');
export const SEED_RESPONSE = fixture('seed-response.txt');

export const SIGNATURE =
  'function (reqHeaders, reqParams, reqBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl)';
export const RESPONSE_SIGNATURE = 'function (respBody, AppKey, AesKey, AesIV, PrefixUrl, TokenUrl)';

/** A request script with the seed's signature around `body`. */
export function requestScript(body: string): string {
  return `${SIGNATURE} {\n${body}\n}`;
}

export function responseScript(body: string): string {
  return `${RESPONSE_SIGNATURE} {\n${body}\n}`;
}

export const SECRETS = {
  AppKey: 'app-123',
  AppSecret: 'app-secret-value',
  AesKey: '0123456789abcdef',
  AesIV: 'fedcba9876543210',
};

export interface RecordedPost {
  url: string;
  body: unknown;
  headers: Record<string, string>;
}

export type TestHost = ScriptHost & { posts: RecordedPost[] };

/** A host whose http_post_json records each call and answers with `answer`. */
export function testHost(
  overrides: Partial<ScriptHost> = {},
  answer: (post: RecordedPost) => Promise<string> | string = () => '{}',
): TestHost {
  const posts: RecordedPost[] = [];
  return {
    secrets: { ...SECRETS },
    sensitiveValues: [SECRETS.AppSecret, SECRETS.AesKey, SECRETS.AesIV],
    prefixUrl: 'https://api.acme.example',
    tokenUrl: 'https://api.acme.example/oauth/token',
    token: 'Bearer cached-token',
    async httpPostJson(url, body, headers) {
      const post = { url, body, headers };
      posts.push(post);
      return answer(post);
    },
    ...overrides,
    posts,
  };
}

export function requestInput(overrides: Partial<RequestScriptInput> = {}): RequestScriptInput {
  return {
    method: 'POST',
    uri: '/orders/1',
    headers: { 'Content-Type': 'application/json' },
    query: [],
    body: { kind: 'json', value: { data: 'hello', timestamp: 1700000000 } },
    ...overrides,
  };
}

/** The JSON body a request run left, as an object. */
export function jsonBody(result: RequestScriptResult): Record<string, unknown> {
  if (result.body.kind !== 'json') throw new Error(`expected a JSON body, got ${result.body.kind}`);
  return result.body.value as Record<string, unknown>;
}

/**
 * One compiled script that evaluates whatever expression it is given (indirect eval, so in the
 * isolate's global scope, where the built-ins are). Bytes come back as { hex }, so a test can
 * compare them; `undefined` as { undefined: true }.
 */
const EVALUATOR = requestScript(`
  var value = (0, eval)(reqBody.get('expression'));
  reqBody.set('result', value instanceof Uint8Array ? { hex: hex_encode(value) } : value === undefined ? { undefined: true } : value);
`);

export async function evaluator(sandbox: Sandbox, cacheKey = 'test:evaluator:v1:request') {
  const script: CompiledScript = await sandbox.compile('request', EVALUATOR, cacheKey);
  return async (expression: string, host: ScriptHost = testHost()): Promise<unknown> => {
    const result = await script.runRequest(
      requestInput({ body: { kind: 'json', value: { expression } } }),
      host,
    );
    return jsonBody(result)['result'];
  };
}
