/**
 * The admin listener's Hono app: `/admin/v1/...` (one folder per resource, each route's schema and
 * handler together), the OpenAPI 3.1 document generated from those same schemas at
 * `/admin/openapi.json`, a docs page at `/admin/docs`, and `/metrics`. Health endpoints are
 * answered by the listener before this app.
 *
 * `/metrics`, the document and the docs page need no token: the admin listener is internal-only
 * (DESIGN.md "Processes and listeners"), and Prometheus scrapes without credentials. Everything
 * under `/admin/v1` needs an admin token; the services decide what its role may do.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { newId } from '../ids.ts';
import type { Services } from '../server/create-services.ts';
import { adminAccessLog } from './access-log.ts';
import { registerAuditRoutes } from './audit/index.ts';
import { authenticateAdmin, requireOwnTenant } from './auth.ts';
import { renderDocsPage } from './docs.ts';
import type { AdminEnv } from './env.ts';
import { registerGatewayTokenRoutes } from './gateway-tokens/index.ts';
import { registerInboundRouteRoutes } from './inbound-routes/index.ts';
import { registerMeRoutes } from './me/index.ts';
import { registerMemberRoutes } from './members/index.ts';
import { registerPartnerKeyRoutes } from './partner-keys/index.ts';
import { adminNotFound, createAdminErrorHandler, validationHook } from './problems.ts';
import { registerProviderRoutes } from './providers/index.ts';
import { API_PREFIX } from './schemas.ts';
import { registerScriptRoutes } from './scripts/index.ts';
import { registerSecretRoutes } from './secrets/index.ts';
import { registerServiceTokenRoutes } from './service-tokens/index.ts';
import { registerTenantRoutes } from './tenants/index.ts';

/** Provider configs carry scripts; 2 MiB is far above any real one and bounds what we buffer. */
const MAX_BODY_BYTES = 2 * 1024 * 1024;
const REQUEST_ID = /^[\w.:-]{1,64}$/;

export const OPENAPI_INFO = {
  openapi: '3.1.0',
  info: {
    title: 'keygate admin API',
    version: '1',
    description:
      'Tenants, admin and service tokens, versioned provider configs, write-only secrets, script tools and audit logs. ' +
      'Authenticate with `Authorization: Bearer <admin token>`. Errors are application/problem+json with a Keygate-Error header. ' +
      'This document, the docs page at /admin/docs and the Prometheus metrics at /metrics need no token: the admin listener ' +
      'is internal-only, and scrapers do not authenticate.',
  },
} as const;

export function createAdminApp(services: Services): OpenAPIHono<AdminEnv> {
  const app = new OpenAPIHono<AdminEnv>({ defaultHook: validationHook });
  app.onError(createAdminErrorHandler(services.logger));
  app.notFound(adminNotFound);

  app.use('*', async function assignRequestId(c, next) {
    const given = c.req.header('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : newId('req');
    c.set('requestId', requestId);
    await next();
    c.header('x-request-id', requestId);
  });
  app.use('*', adminAccessLog(services.metrics, services.logger, { enabled: services.config.accessLog }));

  app.get('/metrics', async (c) => {
    const body = await services.metrics.render(services.providers.loaded());
    return c.body(body, 200, { 'content-type': services.metrics.contentType });
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An admin token (`keygate token create`, or POST /admin/v1/tenants/{tenant}/members)',
  });

  app.use(`${API_PREFIX}/*`, async function noStore(c, next) {
    await next();
    c.header('cache-control', 'no-store');
  });
  app.use(`${API_PREFIX}/*`, bodyLimit({ maxSize: MAX_BODY_BYTES }));
  app.use(`${API_PREFIX}/*`, authenticateAdmin(services));
  // Matches `/tenants/:tenant` itself as well as everything below it.
  app.use(`${API_PREFIX}/tenants/:tenant/*`, requireOwnTenant(services));

  registerMeRoutes(app, services);
  registerTenantRoutes(app, services);
  registerMemberRoutes(app, services);
  registerGatewayTokenRoutes(app, services);
  registerServiceTokenRoutes(app, services);
  registerProviderRoutes(app, services);
  registerScriptRoutes(app, services);
  registerSecretRoutes(app, services);
  registerPartnerKeyRoutes(app, services);
  registerInboundRouteRoutes(app, services);
  registerAuditRoutes(app, services);

  app.doc31('/admin/openapi.json', OPENAPI_INFO);
  app.get('/admin/docs', (c) => {
    c.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(renderDocsPage(app.getOpenAPI31Document(OPENAPI_INFO)));
  });
  return app;
}
