/**
 * Script dry-run for tenant developers (CLI `script test` and the admin API share it): signs a
 * sample request with a draft or active version exactly as the proxy would, and shows the result
 * with secrets masked. With `send`, it also sends it and runs the response script. When a script
 * fails, the error is the one the proxy would raise, plus what the script logged (`logs`).
 */

import { z } from 'zod';
import { isKeygateError, KeygateError } from '../errors.ts';
import type { HttpClient } from '../http-client.ts';
import { newId } from '../ids.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { scriptLogsOf } from '../sandbox/index.ts';
import type { ProviderSecrets } from '../secrets/secret-store.ts';
import { type Actor, authorize, mayDo } from '../services/actor.ts';
import type { ServiceContext } from '../services/context.ts';
import { egressHosts } from '../services/provider-config.ts';
import { getProviderVersion, loadActiveProviderConfig, validationError } from '../services/providers.ts';
import { resolveTenantId } from '../services/tenants.ts';
import type { LoadedProvider } from './provider-registry.ts';
import { answerFromUpstream, maskerFor, maskHost, prepareSignedRequest, withMaskedDetail } from './proxy.ts';
import { serializeQuery } from './query.ts';
import { standInSecrets, standInTokens } from './stand-in-secrets.ts';
import type { TokenCache } from './token-cache/index.ts';

export const sampleRequestSchema = z
  .object({
    method: z
      .string()
      .regex(/^[A-Za-z]+$/)
      .default('POST'),
    path: z.string().startsWith('/').default('/'),
    query: z.record(z.string(), z.string()).default({}),
    headers: z.record(z.string(), z.string()).default({}),
    /** A JSON value (sent as application/json unless headers say otherwise) or a string. */
    body: z.unknown().optional(),
  })
  .strict();

export type SampleRequest = z.input<typeof sampleRequestSchema>;

export interface DryRunResult {
  provider: string;
  version: number;
  request: { method: string; url: string; headers: Record<string, string>; body: string | null };
  logs: string[];
  timing: { scriptUs: number | null; path: 'sync' | 'async' | null };
  /** `stand-in` when the caller may not read the tenant's secrets and the run got stand-ins. */
  secrets: 'real' | 'stand-in';
  response?: { status: number; headers: Record<string, string | string[]>; body: string };
}

export interface DryRunDeps {
  ctx: ServiceContext;
  http: HttpClient;
  tokens: TokenCache;
  metrics: Metrics;
  logger: Logger;
}

export async function dryRunScript(
  deps: DryRunDeps,
  actor: Actor,
  input: { tenant: string; provider: string; version?: number | 'active'; sample: unknown; send?: boolean },
): Promise<DryRunResult> {
  const tenantId = await resolveTenantId(deps.ctx.db, input.tenant);
  authorize(actor, 'script.test', tenantId);
  const parsed = sampleRequestSchema.safeParse(input.sample ?? {});
  if (!parsed.success) throw validationError(parsed.error);
  const sample = parsed.data;
  const version = await getProviderVersion(deps.ctx, actor, {
    tenant: tenantId,
    provider: input.provider,
    version: input.version,
  });
  const { config } = version;
  // Its own isolates, retired when it ends: a dry-run leaves nothing in the isolates that serve
  // traffic, and a developer's many drafts do not each keep an isolate alive.
  const cacheKey = `dry-run:${newId('dry')}:${tenantId}:${config.name}:v${version.version}`;
  try {
    return await dryRunIn(deps, actor, { tenantId, input, sample, version, cacheKey });
  } finally {
    deps.ctx.sandbox.evict(cacheKey);
  }
}

async function dryRunIn(
  deps: DryRunDeps,
  actor: Actor,
  run: {
    tenantId: string;
    input: { send?: boolean };
    sample: z.output<typeof sampleRequestSchema>;
    version: Awaited<ReturnType<typeof getProviderVersion>>;
    cacheKey: string;
  },
): Promise<DryRunResult> {
  const { tenantId, input, sample, version, cacheKey } = run;
  const { config } = version;
  const provider: LoadedProvider = {
    tenantId,
    name: config.name,
    version: version.version,
    revision: -1,
    config,
    egress: egressHosts(config),
    request: config.request
      ? await deps.ctx.sandbox.compile('request', config.request, `${cacheKey}:request`)
      : undefined,
    response: config.response
      ? await deps.ctx.sandbox.compile('response', config.response, `${cacheKey}:response`)
      : undefined,
    scriptFetchesToken: false,
  };
  const stored = await deps.ctx.secrets.loadProviderSecrets(tenantId, config.name);
  // Secrets are write-only: a role that may not set them (a tenant developer) runs its scripts
  // with stand-ins of the same shape, and a stand-in access token, never the values themselves.
  const realSecrets = mayDo(actor, 'secret.manage', tenantId);
  const secrets = realSecrets ? stored : standInSecrets(stored);
  if (!realSecrets) deps = { ...deps, tokens: standInTokens() };
  // A tenant developer may write a draft whose allowedHosts name any host: its dry-run reaches
  // only hosts a tenant admin approved by activating a version, so real secrets go nowhere else.
  if (!mayDo(actor, 'provider.activate', tenantId)) {
    const active = await loadActiveProviderConfig(deps.ctx.db, tenantId, config.name);
    deps = {
      ...deps,
      http: approvedHostsOnly(deps.http, active ? egressHosts(active.config) : new Set(), secrets),
    };
  }
  // Encoded as the proxy's callers would (RFC 3986, a space as %20), so the script sees the same
  // decoded values as for a real call.
  const query = serializeQuery(Object.entries(sample.query));
  const headers: Record<string, string> = Object.fromEntries(
    Object.entries(sample.headers).map(([k, v]) => [k.toLowerCase(), v]),
  );
  let body = Buffer.alloc(0);
  if (sample.body !== undefined) {
    if (typeof sample.body === 'string') body = Buffer.from(sample.body);
    else {
      body = Buffer.from(JSON.stringify(sample.body));
      headers['content-type'] ??= 'application/json';
    }
  }
  const mask = maskerFor(secrets);
  const prepared = await prepareSignedRequest(
    deps,
    provider,
    secrets,
    {
      requestId: 'dry-run',
      method: sample.method,
      upstreamPathAndQuery: `${sample.path}${query ? `?${query}` : ''}`,
      headers,
      body,
    },
    { applyTokenEffects: input.send === true },
  ).catch((err: unknown) => {
    throw withScriptLogs(err, [], mask);
  });
  const maskedHeaders = Object.fromEntries(
    Object.entries(prepared.wire.headers).map(([k, v]) => [k, mask(v)]),
  );
  const result: DryRunResult = {
    provider: config.name,
    version: version.version,
    request: {
      method: prepared.wire.method,
      url: mask(prepared.wire.url),
      headers: maskedHeaders,
      body: prepared.wire.body ? mask(prepared.wire.body.toString('utf8')) : null,
    },
    logs: (prepared.script?.effects.logs ?? []).map(mask),
    timing: { scriptUs: prepared.script?.durationUs ?? null, path: prepared.script?.path ?? null },
    secrets: realSecrets ? 'real' : 'stand-in',
  };
  if (input.send) {
    // Sent and answered exactly as the proxy would: content-encoding, JSON detection, masking.
    const upstream = await deps.http.send(prepared.wire).catch((err: unknown) => {
      throw withMaskedDetail(err, mask);
    });
    const answer = await answerFromUpstream(
      deps,
      provider,
      secrets,
      upstream,
      'dry-run',
      prepared.sentToken,
      result.logs,
    ).catch((err: unknown) => {
      throw withScriptLogs(err, result.logs, mask);
    });
    result.logs = result.logs.map(mask);
    result.response = { status: answer.status, headers: answer.headers, body: answer.body.toString('utf8') };
  }
  return result;
}

/**
 * The error with the failed script's log() output (after `logsBefore`, the request script's when
 * the response script failed) as the problem+json member `logs`. Only the dry-run adds it: the
 * proxy's errors go to calling services, which must not see what a script logged.
 */
function withScriptLogs(err: unknown, logsBefore: string[], mask: (text: string) => string): unknown {
  const logs = [...logsBefore, ...scriptLogsOf(err)].map(mask);
  const masked = withMaskedDetail(err, mask);
  if (!isKeygateError(masked) || logs.length === 0) return masked;
  return new KeygateError(masked.code, masked.message, { ...masked.extra, logs });
}

/** An HttpClient that refuses hosts outside `hosts` (KG_EGRESS_DENIED) before anything is sent. */
function approvedHostsOnly(http: HttpClient, hosts: Set<string>, secrets: ProviderSecrets): HttpClient {
  return {
    ...http,
    async send(req) {
      const url = new URL(req.url);
      if (!hosts.has(url.host.toLowerCase())) {
        throw new KeygateError(
          'KG_EGRESS_DENIED',
          `a tenant developer's dry-run reaches only hosts the active version allows, and ${maskHost(secrets, url.host)} is not one; a tenant admin can run it`,
        );
      }
      return http.send(req);
    },
  };
}
