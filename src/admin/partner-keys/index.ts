/**
 * Partner keys of the inbound API: create (secret shown once), list, change the rate-limit policy
 * or the scopes, rotate, retire a secret, revoke.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { mapPage } from '../../services/paging.ts';
import {
  createPartnerKey,
  listPartnerKeys,
  retirePartnerSecret,
  revokePartnerKey,
  rotatePartnerKey,
  setPartnerKeyScopes,
  updatePartnerKeyPolicy,
} from '../../services/partner-keys.ts';
import type { AdminApp, AdminDeps } from '../env.ts';
import {
  API_PREFIX,
  BEARER,
  errorResponses,
  idParam,
  jsonBody,
  jsonContent,
  listRoute,
  optionalJsonBody,
  TenantParams,
  tenantParam,
} from '../schemas.ts';
import { CreatedPartnerKeySchema, PartnerKeySchema, PolicyChangeSchema, toPartnerKey } from './schema.ts';

const KeyParams = z.object({ tenant: tenantParam, keyId: idParam('keyId', 'Partner key id (pk_...)') });
const TAGS = ['partner keys'];
const PERMISSION = 'partner-key.manage';

export const createPartnerKeyRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys`,
  operationId: 'createPartnerKey',
  tags: TAGS,
  summary: 'Create an inbound API key with its rate-limit policy (the secret is returned once)',
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: {
    params: TenantParams,
    body: jsonBody(
      z.object({
        name: z.string(),
        algorithm: z
          .enum(['token-bucket', 'gcra'])
          .optional()
          .openapi({ description: 'Default token-bucket' }),
        rate: z.number().int().min(1).optional().openapi({ description: 'Requests per period; default 10' }),
        periodSeconds: z.number().int().min(1).optional().openapi({ description: 'Default 1' }),
        burst: z.number().int().min(1).optional().openapi({ description: 'Default 20' }),
        onRedisDown: z
          .enum(['fail-open', 'fail-closed', 'local'])
          .optional()
          .openapi({ description: 'Default local' }),
        scopes: z.array(z.string()).optional().openapi({
          description:
            'Scopes, e.g. orders:read: a route that lists a scope admits every key holding it; default none',
        }),
      }),
    ),
  },
  responses: {
    201: jsonContent(CreatedPartnerKeySchema, 'The new key and its secret'),
    ...errorResponses(400, 404, 415),
  },
});

export const listPartnerKeysRoute = listRoute({
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys`,
  operationId: 'listPartnerKeys',
  tags: TAGS,
  summary: "List a tenant's partner keys (never their secrets)",
  permission: PERMISSION,
  params: TenantParams,
  item: PartnerKeySchema,
  description: 'A page of partner keys, oldest first',
});

export const updatePartnerKeyPolicyRoute = createRoute({
  method: 'patch',
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys/{keyId}`,
  operationId: 'updatePartnerKeyPolicy',
  tags: TAGS,
  summary:
    "Change a key's rate-limit policy (fields left out keep their value); every node applies it at once",
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: { params: KeyParams, body: jsonBody(PolicyChangeSchema) },
  responses: {
    200: jsonContent(PartnerKeySchema, 'The key with its new policy'),
    ...errorResponses(400, 404, 409, 415),
  },
});

export const setPartnerKeyScopesRoute = createRoute({
  method: 'put',
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys/{keyId}/scopes`,
  operationId: 'setPartnerKeyScopes',
  tags: TAGS,
  summary: "Replace a key's scopes ([] removes them); every node applies it at once",
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: {
    params: KeyParams,
    body: jsonBody(z.object({ scopes: z.array(z.string()).openapi({ example: ['orders:read'] }) })),
  },
  responses: {
    200: jsonContent(PartnerKeySchema, 'The key with its new scopes'),
    ...errorResponses(400, 404, 409, 415),
  },
});

export const rotatePartnerKeyRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys/{keyId}/rotate`,
  operationId: 'rotatePartnerKey',
  tags: TAGS,
  summary: 'Add a second secret (returned once); both verify until one is retired',
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: { params: KeyParams },
  responses: {
    201: jsonContent(CreatedPartnerKeySchema, 'The key and its new secret'),
    ...errorResponses(404, 409),
  },
});

export const retirePartnerSecretRoute = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys/{keyId}/retire-secret`,
  operationId: 'retirePartnerSecret',
  tags: TAGS,
  summary: 'Retire one of two live secrets (default the older)',
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: {
    params: KeyParams,
    body: optionalJsonBody(z.object({ version: z.number().int().min(1).optional() })),
  },
  responses: {
    200: jsonContent(PartnerKeySchema.extend({ retiredVersion: z.number().int() }), 'The key'),
    ...errorResponses(400, 404, 409, 415),
  },
});

export const revokePartnerKeyRoute = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/tenants/{tenant}/partner-keys/{keyId}`,
  operationId: 'revokePartnerKey',
  tags: TAGS,
  summary: 'Revoke a partner key for good (requests then fail with KG_KEY_REVOKED)',
  security: BEARER,
  'x-keygate-permission': PERMISSION,
  request: { params: KeyParams },
  responses: { 200: jsonContent(PartnerKeySchema, 'The revoked key'), ...errorResponses(404, 409) },
});

export function registerPartnerKeyRoutes(app: AdminApp, { ctx }: AdminDeps): void {
  app.openapi(createPartnerKeyRoute, async (c) => {
    const created = await createPartnerKey(ctx, c.var.actor, {
      tenant: c.req.valid('param').tenant,
      ...c.req.valid('json'),
    });
    return c.json(
      { ...toPartnerKey(created), secret: created.secret, secretVersion: created.secretVersion },
      201,
    );
  });
  app.openapi(listPartnerKeysRoute, async (c) => {
    const page = await listPartnerKeys(ctx, c.var.actor, c.req.valid('param').tenant, c.req.valid('query'));
    return c.json(mapPage(page, toPartnerKey), 200);
  });
  app.openapi(updatePartnerKeyPolicyRoute, async (c) => {
    const view = await updatePartnerKeyPolicy(ctx, c.var.actor, {
      ...c.req.valid('json'),
      ...c.req.valid('param'),
    });
    return c.json(toPartnerKey(view), 200);
  });
  app.openapi(setPartnerKeyScopesRoute, async (c) => {
    const view = await setPartnerKeyScopes(ctx, c.var.actor, {
      ...c.req.valid('param'),
      scopes: c.req.valid('json').scopes,
    });
    return c.json(toPartnerKey(view), 200);
  });
  app.openapi(rotatePartnerKeyRoute, async (c) => {
    const rotated = await rotatePartnerKey(ctx, c.var.actor, c.req.valid('param'));
    return c.json(
      { ...toPartnerKey(rotated), secret: rotated.secret, secretVersion: rotated.secretVersion },
      201,
    );
  });
  app.openapi(retirePartnerSecretRoute, async (c) => {
    const view = await retirePartnerSecret(ctx, c.var.actor, {
      ...c.req.valid('param'),
      version: c.req.valid('json').version,
    });
    return c.json({ ...toPartnerKey(view), retiredVersion: view.retiredVersion }, 200);
  });
  app.openapi(revokePartnerKeyRoute, async (c) => {
    return c.json(toPartnerKey(await revokePartnerKey(ctx, c.var.actor, c.req.valid('param'))), 200);
  });
}
