/** The admin app's Hono environment: what middleware puts on the context for the handlers. */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Services } from '../server/create-services.ts';
import type { Actor } from '../services/actor.ts';

/** Who is calling, as established by the bearer token. */
export type AdminActor = Actor & { kind: 'admin' };

export interface AdminVariables {
  /** Set by `authenticateAdmin` on every `/admin/v1/...` request. */
  actor: AdminActor;
  requestId: string;
}

export type AdminEnv = { Variables: AdminVariables };

export type AdminApp = OpenAPIHono<AdminEnv>;

/** What a route's register function receives. */
export type AdminDeps = Services;
