/** Small node:http helpers shared by the listeners: request ids, bounded body reads, answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_HEADER, KeygateError, PROBLEM_CONTENT_TYPE, toProblem } from '../errors.ts';
import { newId } from '../ids.ts';
import { readBody } from '../read-body.ts';
import type { Readiness } from './readiness.ts';

const REQUEST_ID = /^[\w.:-]{1,64}$/;

/** Reuses a caller's X-Request-Id when it is well-formed, so logs line up across services. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : newId('req');
}

/** Reads the whole body, failing with 413 as soon as it passes `limit` bytes (the rest is drained). */
export async function readBodyWithLimit(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new KeygateError('KG_PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge();
  }
  return (await readBody(req, limit, tooLarge)).body;
}

export function sendProblem(
  res: ServerResponse,
  err: unknown,
  requestId: string,
  extraHeaders: Record<string, string> = {},
): number {
  const problem = toProblem(err, requestId);
  const body = JSON.stringify(problem);
  if (!res.headersSent) {
    res.writeHead(problem.status, {
      ...extraHeaders,
      'content-type': PROBLEM_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      [ERROR_HEADER]: problem.code,
      'x-request-id': requestId,
    });
  }
  res.end(body);
  return problem.status;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** `/healthz` (process up) and `/readyz` (dependencies reachable, not shutting down), on every listener. */
export async function handleHealth(
  req: IncomingMessage,
  res: ServerResponse,
  readiness: Readiness,
): Promise<boolean> {
  const path = req.url?.split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (path === '/readyz') {
    const { ready, draining, checks } = await readiness.check();
    const status = ready ? 'ready' : draining ? 'shutting down' : 'not ready';
    sendJson(res, ready ? 200 : 503, { status, checks });
    return true;
  }
  return false;
}
