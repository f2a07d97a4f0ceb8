import { createRoute, z } from '@hono/zod-openapi';
import { dryRunScript } from '../../outbound/dry-run.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  jsonBody,
  jsonContent,
  ProviderParams,
  versionRefJson,
} from '../schemas.ts';
import { DryRunResultSchema, SampleRequestSchema } from './schema.ts';

export const dryRunRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/providers/{provider}/dry-run`,
  operationId: 'dryRunProvider',
  tags: ['script tools'],
  summary: 'Sign a sample request with a draft or the active version and show what would be sent',
  description:
    'Returns method, URL, headers and body, the script `log()` output and its timing, with every secret masked. ' +
    'With `send: true` the request is sent (egress rules apply) and the response script runs on the answer. ' +
    'A failing script gets the error the proxy would raise, with what the script logged as `logs`.',
  security: BEARER,
  'x-keygate-permission': 'script.test',
  request: {
    params: ProviderParams,
    body: jsonBody(
      z.object({
        version: versionRefJson.optional().openapi({ description: 'Version to use; default the active one' }),
        request: SampleRequestSchema.optional(),
        send: z.boolean().optional(),
      }),
    ),
  },
  responses: {
    200: jsonContent(DryRunResultSchema, 'The signed request'),
    ...errorResponses(400, 404, 415, 502),
  },
});

export function registerDryRun(app: AdminApp, services: AdminDeps): void {
  app.openapi(dryRunRoute, async (c) => {
    const { tenant, provider } = c.req.valid('param');
    const body = c.req.valid('json');
    const result = await dryRunScript(services, c.var.actor, {
      tenant,
      provider,
      version: body.version,
      sample: body.request ?? {},
      send: body.send === true,
    });
    return c.json(result, 200);
  });
}
