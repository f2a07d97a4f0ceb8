/**
 * Schemas shared by every admin route: path parameters, pagination, problem+json, and helpers
 * that keep the route files short. Responses use ISO 8601 timestamps.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { ERROR_CODES, PROBLEM_CONTENT_TYPE } from '../errors.ts';

export const API_PREFIX = '/admin/v1';

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'urn:keygate:error:not-found' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]),
    requestId: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string(), in: z.string().optional() }))
      .optional()
      .openapi({ description: 'Field-level validation errors (KG_VALIDATION_FAILED)' }),
    logs: z
      .array(z.string())
      .optional()
      .openapi({ description: 'Dry-run only: what the failed script logged, secrets masked' }),
  })
  .openapi('Problem');

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 502;

const ERROR_DESCRIPTIONS: Record<ErrorStatus, string> = {
  400: 'Validation failed (KG_VALIDATION_FAILED, with field paths) or malformed request',
  401: 'No valid admin token (KG_UNAUTHENTICATED) or an expired / revoked one (KG_TOKEN_EXPIRED)',
  403: 'The role may not do this, or not for this tenant (KG_FORBIDDEN)',
  404: 'Unknown tenant, provider, version or id',
  409: 'Conflicting change',
  413: 'Request body too large',
  415: 'Content-Type is not application/json',
  502: 'A signing script failed (KG_SCRIPT_ERROR, with line and column) or the upstream did',
};

type ProblemResponse = {
  description: string;
  content: { 'application/problem+json': { schema: typeof ProblemSchema } };
};

/** The problem+json responses a route documents (401 and 403 are added to every authenticated route). */
export function errorResponses<const C extends ErrorStatus[]>(
  ...codes: C
): { [K in C[number] | 401 | 403]: ProblemResponse } {
  const out: Partial<Record<ErrorStatus, ProblemResponse>> = {};
  for (const code of [...codes, 401, 403] as ErrorStatus[]) {
    out[code] = {
      description: ERROR_DESCRIPTIONS[code],
      content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
    };
  }
  return out as { [K in C[number] | 401 | 403]: ProblemResponse };
}

export function jsonContent<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } } as const;
}

/** A required JSON request body. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { content: { 'application/json': { schema } }, required: true } as const;
}

/** A JSON body that may be left out entirely (then the handler sees `{}`). */
export function optionalJsonBody<T extends z.ZodType>(schema: T) {
  return { content: { 'application/json': { schema } }, required: false } as const;
}

export const noContent = { 204: { description: 'Done; no body' } } as const;

export const BEARER = [{ bearer: [] }];

export const tenantParam = z
  .string()
  .min(1)
  .max(100)
  .openapi({ param: { name: 'tenant', in: 'path' }, description: 'Tenant id or name', example: 'acme' });

export const providerParam = z
  .string()
  .min(1)
  .max(100)
  .openapi({ param: { name: 'provider', in: 'path' }, description: 'Provider name', example: 'acme-pay' });

export const idParam = (name: string, description: string) =>
  z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name, in: 'path' }, description });

export const TenantParams = z.object({ tenant: tenantParam });
export const ProviderParams = z.object({ tenant: tenantParam, provider: providerParam });

/** A version number, or `active` for whichever version is active (path and query form). */
export const versionRef = z.union([z.literal('active'), z.coerce.number().int().min(1)]);
/** The same in a JSON body. */
export const versionRefJson = z.union([z.literal('active'), z.number().int().min(1)]);

/** `?limit=&cursor=` of every list endpoint (see services/paging.ts). */
export const pageQuery = {
  cursor: z
    .string()
    .min(1)
    .max(500)
    .optional()
    .openapi({ description: 'nextCursor of the previous page (opaque; only for this endpoint)' }),
  // Decimal digits only, as the configuration's numbers: `0x10` or `1e2` is a mistake, not 16 or 100.
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().int().min(1).max(500))
    .default(50)
    .openapi({
      type: 'integer',
      minimum: 1,
      maximum: 500,
      default: 50,
      description: 'Items per page, 1-500; default 50',
    }),
};

export const PageQuery = z.object(pageQuery);

export const timeRangeQuery = {
  since: z.iso.datetime({ offset: true }).optional().openapi({ description: 'ISO 8601, inclusive' }),
  until: z.iso.datetime({ offset: true }).optional().openapi({ description: 'ISO 8601, exclusive' }),
};

/** A page of a list endpoint: `items` in the endpoint's order, `nextCursor` null on the last page. */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    nextCursor: z
      .string()
      .nullable()
      .openapi({ description: 'Pass as cursor for the next page; null on the last page' }),
  });
}

/**
 * A list endpoint: GET with `?limit=&cursor=`, a page of `item` as 200, and a 400 for a bad limit
 * or cursor; with path `params`, also a 404 for a tenant or provider that does not exist.
 */
export function listRoute<I extends z.ZodType, P extends z.ZodObject | undefined = undefined>(def: {
  path: string;
  operationId: string;
  tags: string[];
  summary: string;
  permission: string;
  params?: P;
  item: I;
  /** Of the 200 response: what a page holds, in which order. */
  description: string;
}) {
  type Request = P extends z.ZodObject ? { params: P; query: typeof PageQuery } : { query: typeof PageQuery };
  const request = (
    def.params === undefined ? { query: PageQuery } : { params: def.params, query: PageQuery }
  ) as Request;
  return createRoute({
    method: 'get',
    path: def.path,
    operationId: def.operationId,
    tags: def.tags,
    summary: def.summary,
    security: BEARER,
    'x-keygate-permission': def.permission,
    request,
    responses: {
      200: jsonContent(pageSchema(def.item), def.description),
      ...(def.params === undefined ? errorResponses(400) : errorResponses(400, 404)),
    },
  });
}
