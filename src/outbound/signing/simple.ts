/**
 * `simple` mode: adds appKey and timestamp, then
 * sign = UPPER(hex(sha256(buildSignStr(fields) + AppSecret))). JSON-object and form bodies are
 * signed in the body; a request without a body is signed in the query string.
 */
import { createHash } from 'node:crypto';
import { KeygateError } from '../../errors.ts';
import { type ProviderSecrets, requireSecret } from '../../secrets/secret-store.ts';
import { buildSignStr } from '../sign-string.ts';
import type { OutgoingRequest } from './types.ts';

export function signSimple(
  req: OutgoingRequest,
  provider: string,
  secrets: ProviderSecrets,
  nowMs: number,
): void {
  const appKey = requireSecret(secrets, provider, 'AppKey');
  const appSecret = requireSecret(secrets, provider, 'AppSecret');
  const timestamp = String(Math.floor(nowMs / 1000));
  const sign = (fields: Array<[string, unknown]>) =>
    createHash('sha256')
      .update(buildSignStr(fields) + appSecret)
      .digest('hex')
      .toUpperCase();

  const body = req.body;
  if (body.kind === 'json' && isPlainObject(body.value)) {
    const obj = body.value;
    delete obj.sign;
    obj.appKey = appKey;
    if (obj.timestamp === undefined || obj.timestamp === null || obj.timestamp === '')
      obj.timestamp = timestamp;
    obj.sign = sign(Object.entries(obj));
  } else if (body.kind === 'form') {
    signPairs(body.fields, appKey, timestamp, sign);
  } else if (body.kind === 'none') {
    signPairs(req.query, appKey, timestamp, sign);
  } else {
    throw new KeygateError(
      'KG_BAD_REQUEST',
      'mode simple signs a JSON object, form fields, or the query of a bodiless request',
    );
  }
}

function signPairs(
  pairs: Array<[string, string]>,
  appKey: string,
  timestamp: string,
  sign: (fields: Array<[string, unknown]>) => string,
): void {
  const set = (name: string, value: string) => {
    const i = pairs.findIndex(([k]) => k === name);
    if (i >= 0) pairs.splice(i, 1, [name, value]);
    else pairs.push([name, value]);
  };
  for (let i = pairs.length - 1; i >= 0; i--) if (pairs[i]![0] === 'sign') pairs.splice(i, 1);
  set('appKey', appKey);
  if (!pairs.some(([k, v]) => k === 'timestamp' && v !== '')) set('timestamp', timestamp);
  pairs.push(['sign', sign(pairs)]);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
