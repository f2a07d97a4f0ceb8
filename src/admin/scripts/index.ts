/** `POST /tenants/{tenant}/scripts/validate`: compile a script in the sandbox, report line and column. */
import { createRoute, z } from '@hono/zod-openapi';
import { validateScript } from '../../services/scripts.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import { API_PREFIX, BEARER, errorResponses, jsonBody, jsonContent, TenantParams } from '../schemas.ts';

const kind = z.enum(['request', 'response']);

const ValidationSchema = z
  .object({
    valid: z.boolean(),
    kind,
    error: z
      .object({
        code: z.string(),
        message: z.string(),
        line: z.number().int().nullable(),
        column: z.number().int().nullable(),
      })
      .optional()
      .openapi({ description: 'Present when valid is false' }),
  })
  .openapi('ScriptValidation');

export const validateScriptRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/scripts/validate`,
  operationId: 'validateScript',
  tags: ['script tools'],
  summary: 'Compile a request or response script; a syntax error comes back with line and column',
  security: BEARER,
  'x-keygate-permission': 'script.test',
  request: {
    params: TenantParams,
    body: jsonBody(
      z.object({
        kind,
        source: z
          .string()
          .min(1)
          .max(1024 * 1024)
          .openapi({
            example: 'function (reqHeaders, reqParams, reqBody, AppKey) { reqHeaders.set("x-k", AppKey) }',
          }),
      }),
    ),
  },
  responses: {
    200: jsonContent(ValidationSchema, 'Whether the script compiles'),
    ...errorResponses(400, 404, 415),
  },
});

export function registerScriptRoutes(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(validateScriptRoute, async (c) => {
    const { tenant } = c.req.valid('param');
    const { kind, source } = c.req.valid('json');
    return c.json(await validateScript(ctx, c.var.actor, { tenant, kind, source }), 200);
  });
}
