/** Inbound routes: a tenant's path prefix -> internal upstream, with its timeout and allowed keys or scopes. */
import { createRoute, z } from '@hono/zod-openapi';
import { mapPage } from '../../services/paging.ts';
import { addRoute, listRoutes, type RouteView, removeRoute } from '../../services/routes.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  idParam,
  jsonBody,
  jsonContent,
  listRoute,
  noContent,
  TenantParams,
  tenantParam,
} from '../schemas.ts';

const TAGS = ['inbound routes'];
const PERMISSION = 'route.manage';

const InboundRouteSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    prefix: z.string(),
    upstream: z.string(),
    timeoutMs: z.number().int(),
    keyIds: z.array(z.string()).nullable().openapi({ description: 'Keys allowed by id; null = no list' }),
    scopes: z.array(z.string()).nullable().openapi({
      description:
        'Keys holding one of these scopes are allowed too; null = no scope rule. Both null = every key of the tenant',
    }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('InboundRoute');

function toInboundRoute(v: RouteView): z.infer<typeof InboundRouteSchema> {
  return v;
}

export const addInboundRouteRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/routes`,
  operationId: 'addInboundRoute',
  tags: TAGS,
  summary: 'Add an inbound route: requests under the prefix go to the upstream, path unchanged',
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: {
    params: TenantParams,
    body: jsonBody(
      z.object({
        prefix: z.string().openapi({ example: '/orders' }),
        upstream: z.string().openapi({ example: 'http://orders.internal:8000' }),
        timeoutMs: z.number().int().optional(),
        keyIds: z
          .array(z.string())
          .nullable()
          .optional()
          .openapi({ description: 'Keys allowed by id; leave out (with scopes) for every key' }),
        scopes: z
          .array(z.string())
          .nullable()
          .optional()
          .openapi({ description: 'Keys holding one of these scopes are allowed too' }),
      }),
    ),
  },
  responses: { 201: jsonContent(InboundRouteSchema, 'The new route'), ...errorResponses(400, 404, 409, 415) },
});

export const listInboundRoutesRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/routes`,
  operationId: 'listInboundRoutes',
  tags: TAGS,
  summary: "List a tenant's inbound routes",
  permission: PERMISSION,
  params: TenantParams,
  item: InboundRouteSchema,
  description: 'A page of routes, by prefix',
});

export const removeInboundRouteRoute = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/tenants/{tenant}/routes/{routeId}`,
  operationId: 'removeInboundRoute',
  tags: TAGS,
  summary: 'Remove an inbound route',
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: { params: z.object({ tenant: tenantParam, routeId: idParam('routeId', 'Route id') }) },
  responses: { ...noContent, ...errorResponses(404) },
});

export function registerInboundRouteRoutes(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(addInboundRouteRoute, async (c) => {
    const route = await addRoute(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('json'),
    });
    return c.json(toInboundRoute(route), 201);
  });
  app.openapi(listInboundRoutesRoute, async (c) => {
    const page = await listRoutes(ctx, c.var.actor, c.req.valid('param').tenant, c.req.valid('query'));
    return c.json(mapPage(page, toInboundRoute), 200);
  });
  app.openapi(removeInboundRouteRoute, async (c) => {
    await removeRoute(ctx, c.var.actor, c.req.valid('param'));
    return c.body(null, 204);
  });
}
