/**
 * Every admin error is problem+json with a Keygate-Error header: KeygateErrors map through
 * toProblem, zod validation failures become KG_VALIDATION_FAILED with field paths, Hono's own
 * HTTP exceptions (malformed JSON, body limit, media type) get stable codes, and anything else is
 * logged and answered as KG_INTERNAL without its message.
 */
import type { Hook } from '@hono/zod-openapi';
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import {
  ERROR_HEADER,
  type ErrorCode,
  isKeygateError,
  KeygateError,
  PROBLEM_CONTENT_TYPE,
  toProblem,
} from '../errors.ts';
import { type Logger, summarizeError } from '../logger.ts';
import type { AdminEnv } from './env.ts';

const TARGET_NAMES: Record<string, string> = {
  json: 'body',
  form: 'body',
  query: 'query',
  param: 'path',
  header: 'header',
  cookie: 'cookie',
};

/** The OpenAPIHono defaultHook: a failed zod validation throws KG_VALIDATION_FAILED. */
export const validationHook: Hook<unknown, AdminEnv, string, undefined> = (result) => {
  if (result.success) return undefined;
  throw zodProblem(result.error, TARGET_NAMES[result.target] ?? result.target);
};

export function zodProblem(error: z.ZodError, where: string): KeygateError {
  const errors = error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.message,
    in: where,
  }));
  const detail = errors.map((e) => `${where}${e.path ? ` ${e.path}` : ''}: ${e.message}`).join('; ');
  return new KeygateError('KG_VALIDATION_FAILED', detail, { errors });
}

const HTTP_EXCEPTION_CODES: Record<number, { code: ErrorCode; detail: string }> = {
  400: { code: 'KG_BAD_REQUEST', detail: 'the request body is not valid JSON' },
  404: { code: 'KG_NOT_FOUND', detail: 'no such admin route' },
  413: { code: 'KG_PAYLOAD_TOO_LARGE', detail: 'request body too large' },
  415: { code: 'KG_UNSUPPORTED_MEDIA_TYPE', detail: 'send the body as application/json' },
};

export function problemFor(c: Context<AdminEnv>, err: unknown): Response {
  const requestId = c.get('requestId');
  const problem = toProblem(err, requestId);
  const headers: Record<string, string> = {
    'content-type': PROBLEM_CONTENT_TYPE,
    [ERROR_HEADER]: problem.code,
    'cache-control': 'no-store',
  };
  if (problem.status === 401) headers['www-authenticate'] = 'Bearer realm="keygate-admin"';
  // The rest of an oversized body is never read: the connection cannot carry another request.
  if (problem.status === 413) headers.connection = 'close';
  return c.body(JSON.stringify(problem), problem.status as 400, headers);
}

export function createAdminErrorHandler(logger: Logger): ErrorHandler<AdminEnv> {
  return function handleAdminError(err, c) {
    if (isKeygateError(err)) {
      if (err.status >= 500)
        logger.warn(
          { requestId: c.get('requestId'), code: err.code, detail: err.message },
          'admin request failed',
        );
      return problemFor(c, err);
    }
    if (err instanceof HTTPException) {
      const mapped = HTTP_EXCEPTION_CODES[err.status] ?? HTTP_EXCEPTION_CODES[400]!;
      return problemFor(c, new KeygateError(mapped.code, mapped.detail));
    }
    logger.error(
      { requestId: c.get('requestId'), err: summarizeError(err, { stack: true }) },
      'admin request failed unexpectedly',
    );
    return problemFor(c, err);
  };
}

export const adminNotFound: NotFoundHandler<AdminEnv> = (c) =>
  problemFor(c, new KeygateError('KG_NOT_FOUND', `no admin route ${c.req.method} ${c.req.path}`));
